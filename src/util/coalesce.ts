// Gathers small chunks into large ones. Every write of a stream costs a trip to libuv's thread pool on
// the main thread; network and zlib hand out 16-64 KiB pieces, so writing them as they come costs more
// than copying them into 1 MiB buffers first.
import { Transform } from 'node:stream';

export const COALESCE_BYTES = 1024 * 1024;

export class Coalescer extends Transform {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly target = COALESCE_BYTES) {
    super({ highWaterMark: target });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size >= this.target) this.flushChunks();
    done();
  }

  override _flush(done: (err?: Error | null) => void): void {
    this.flushChunks();
    done();
  }

  private flushChunks(): void {
    if (this.size === 0) return;
    this.push(this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size));
    this.chunks = [];
    this.size = 0;
  }
}
