// Turns a layer blob into its tar stream: gzip, zstd or none, by media type, checked against the
// first bytes (registries mislabel layers, and a foreign type is no reason to guess wrong).
import { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { Decompress as ZstdDecompress } from 'fzstd';
import { InvalidArgumentError } from '../../errors';

export type Compression = 'gzip' | 'zstd' | 'none';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

export function compressionOfMediaType(mediaType: string): Compression | undefined {
  if (/(\+|\.)gzip$/.test(mediaType) || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  if (mediaType.endsWith('.tar') || mediaType.endsWith('layer.v1.tar')) return 'none';
  return undefined;
}

export function sniffCompression(head: Buffer): Compression {
  if (GZIP_MAGIC.every((b, i) => head[i] === b)) return 'gzip';
  if (ZSTD_MAGIC.every((b, i) => head[i] === b)) return 'zstd';
  return 'none';
}

/** A Transform over fzstd's push-based streaming decoder. */
function zstdStream(): Transform {
  let decoder: ZstdDecompress;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      try {
        decoder.push(chunk);
        done();
      } catch (err) {
        done(new InvalidArgumentError(`corrupt zstd layer: ${(err as Error).message}`));
      }
    },
    flush(done) {
      try {
        decoder.push(new Uint8Array(0), true);
        done();
      } catch (err) {
        done(new InvalidArgumentError(`corrupt zstd layer: ${(err as Error).message}`));
      }
    },
  });
  // fzstd is loaded on the first zstd layer: most nodes never see one, and berthd's memory is per node.
  const { Decompress } = require('fzstd') as typeof import('fzstd');
  decoder = new Decompress((data: Uint8Array) => {
    t.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  return t;
}

export function decompressor(kind: Compression): Transform | undefined {
  // Large chunks: every chunk costs a callback, a hash update and a write on the main thread.
  if (kind === 'gzip') return zlib.createGunzip({ chunkSize: 256 * 1024 });
  if (kind === 'zstd') return zstdStream();
  return undefined;
}

/** Reads the first bytes to confirm (or find) the compression, then returns the decompressed stream. */
export async function decompressed(source: Readable, mediaType: string): Promise<Readable> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let headSize = 0;
  let ended = false;
  while (headSize < ZSTD_MAGIC.length && !ended) {
    const next = await it.next();
    if (next.done) ended = true;
    else {
      head.push(next.value);
      headSize += next.value.length;
    }
  }
  const first = Buffer.concat(head);
  const declared = compressionOfMediaType(mediaType);
  const actual = first.length ? sniffCompression(first) : declared ?? 'none';
  if (declared && declared !== 'none' && actual !== declared) {
    throw new InvalidArgumentError(`layer declared as ${mediaType} is not ${declared}-compressed`);
  }
  async function* replay(): AsyncGenerator<Buffer> {
    if (first.length) yield first;
    if (ended) return;
    for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
  }
  const raw = Readable.from(replay(), { objectMode: false });
  const t = decompressor(actual);
  if (!t) return raw;
  raw.on('error', (err) => t.destroy(err));
  return raw.pipe(t);
}
