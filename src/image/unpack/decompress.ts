// Turns a layer blob into its tar stream: gzip, zstd or none, by media type, checked against the
// first bytes (registries mislabel layers, and a foreign type is no reason to guess wrong).
import { Transform, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
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
  decoder = new ZstdDecompress((data: Uint8Array) => {
    t.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  return t;
}

export function decompressor(kind: Compression): Transform | undefined {
  if (kind === 'gzip') return zlib.createGunzip();
  if (kind === 'zstd') return zstdStream();
  return undefined;
}

/** Reads the first bytes to confirm (or find) the compression, then returns the decompressed stream. */
export async function decompressed(source: Readable, mediaType: string): Promise<Readable> {
  const head: Buffer = await new Promise((resolve, reject) => {
    const onReadable = () => {
      const chunk = source.read() as Buffer | null;
      if (chunk === null && !source.readableEnded) return;
      cleanup();
      resolve(chunk ?? Buffer.alloc(0));
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      source.off('readable', onReadable);
      source.off('end', onEnd);
      source.off('error', onError);
    };
    source.on('readable', onReadable);
    source.on('end', onEnd);
    source.on('error', onError);
  });
  source.unshift(head);
  const declared = compressionOfMediaType(mediaType);
  const actual = head.length ? sniffCompression(head) : declared ?? 'none';
  if (declared && declared !== 'none' && actual !== declared) {
    throw new InvalidArgumentError(`layer declared as ${mediaType} is not ${declared}-compressed`);
  }
  const t = decompressor(actual);
  if (!t) return source;
  source.on('error', (err) => t.destroy(err));
  return source.pipe(t);
}
