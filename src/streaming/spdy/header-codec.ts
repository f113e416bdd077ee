// SPDY/3 header blocks: the name/value block format, and the two zlib streams of a session (one per
// direction) that compress every block against the SPDY/3 dictionary. Each block ends with a sync flush,
// so it decodes on its own given the blocks before it; the shared state is why blocks must be encoded and
// decoded in the order they are sent, which the serial queue guarantees.
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary';

/** Header names are lowercase on the wire; a name may carry several values (NUL-separated there). */
export type SpdyHeaders = Record<string, string[]>;

/** Largest compressed header block accepted: kubernetes' blocks are a few dozen bytes, and the bound caps what inflating can cost. */
export const MAX_COMPRESSED_HEADER_BLOCK = 64 * 1024;
const MAX_HEADER_BLOCK = 1024 * 1024;

export class HeaderBlockError extends Error {}

export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [u32(entries.length)];
  for (const [name, values] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  let at = 0;
  const need = (n: number): void => {
    if (at + n > block.length) throw new HeaderBlockError(`header block truncated at byte ${at} of ${block.length}`);
  };
  const readBytes = (): Buffer => {
    need(4);
    const len = block.readUInt32BE(at);
    at += 4;
    need(len);
    const out = block.subarray(at, at + len);
    at += len;
    return out;
  };
  need(4);
  const count = block.readUInt32BE(at);
  at += 4;
  const headers: SpdyHeaders = {};
  for (let i = 0; i < count; i++) {
    const name = readBytes().toString('utf8').toLowerCase();
    const values = readBytes().toString('utf8').split('\0');
    headers[name] = [...(headers[name] ?? []), ...values];
  }
  if (at !== block.length) throw new HeaderBlockError(`${block.length - at} bytes after the last header`);
  return headers;
}

/** First value of a header, looked up case-insensitively (as Go's http.Header.Get). */
export function headerValue(headers: SpdyHeaders, name: string): string | undefined {
  return headers[name.toLowerCase()]?.[0];
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** One direction's zlib stream; every call is one header block, run strictly in call order. */
class SerialZlib {
  private tail: Promise<unknown> = Promise.resolve();
  private out: Buffer[] = [];
  private outBytes = 0;
  private failure: Error | undefined;

  constructor(private readonly z: zlib.Deflate | zlib.Inflate) {
    z.on('data', (b: Buffer) => {
      this.out.push(b);
      this.outBytes += b.length;
    });
    z.on('error', (err: Error) => {
      this.failure = err;
    });
  }

  run(input: Buffer): Promise<Buffer> {
    const step = (): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        if (this.failure) return reject(this.failure);
        this.z.write(input);
        this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          if (this.failure) return reject(this.failure);
          if (this.outBytes > MAX_HEADER_BLOCK) return reject(new HeaderBlockError('header block inflates past 1 MiB'));
          const out = Buffer.concat(this.out);
          this.out = [];
          this.outBytes = 0;
          resolve(out);
        });
      });
    const result = this.tail.then(step);
    this.tail = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.z.destroy();
  }
}

export class HeaderCompressor {
  private readonly zlib = new SerialZlib(zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 }));

  compress(headers: SpdyHeaders): Promise<Buffer> {
    return this.zlib.run(encodeHeaderBlock(headers));
  }

  close(): void {
    this.zlib.close();
  }
}

export class HeaderDecompressor {
  private readonly zlib = new SerialZlib(zlib.createInflate({ dictionary: SPDY3_DICTIONARY }));

  async decompress(compressed: Buffer): Promise<SpdyHeaders> {
    if (compressed.length > MAX_COMPRESSED_HEADER_BLOCK) {
      throw new HeaderBlockError(`compressed header block of ${compressed.length} bytes is too large`);
    }
    return decodeHeaderBlock(await this.zlib.run(compressed));
  }

  close(): void {
    this.zlib.close();
  }
}
