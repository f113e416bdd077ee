// gRPC's length-prefixed messages on an HTTP/2 stream (the gRPC over HTTP/2 protocol, "Length-Prefixed-
// Message": a compressed flag byte, a 4-byte big-endian length, the message), read with a size limit.
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { GrpcError, Status } from './status';

const PREFIX = 5;
const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);

/** Collects the messages of a request stream; refuses one above maxBytes as soon as its prefix says so. */
export class MessageReader {
  private buffered: Buffer[] = [];
  private length = 0;
  readonly messages: { compressed: boolean; body: Buffer }[] = [];

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    this.buffered.push(chunk);
    this.length += chunk.length;
    for (;;) {
      if (this.length < PREFIX) return;
      const head = this.peek(PREFIX);
      const size = head.readUInt32BE(1);
      if (head[0] > 1) throw new GrpcError(Status.INTERNAL, `invalid gRPC message flag ${head[0]}`);
      if (size > this.maxBytes) throw new GrpcError(Status.RESOURCE_EXHAUSTED, `received message larger than max (${size} vs. ${this.maxBytes})`);
      if (this.length < PREFIX + size) return;
      const all = this.take(PREFIX + size);
      this.messages.push({ compressed: head[0] === 1, body: all.subarray(PREFIX) });
    }
  }

  /** At the end of the stream: a message cut short is a protocol error. */
  end(): void {
    if (this.length > 0) throw new GrpcError(Status.INTERNAL, `the request stream ended inside a message (${this.length} bytes left over)`);
  }

  private peek(n: number): Buffer {
    if (this.buffered[0].length < n) this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0] : Buffer.concat(this.buffered);
    this.buffered = all.length > n ? [all.subarray(n)] : [];
    this.length -= n;
    return all.subarray(0, n);
  }
}

/** The message's bytes, decompressed as the request's grpc-encoding says. */
export async function messageBytes(message: { compressed: boolean; body: Buffer }, encoding: string | undefined, maxBytes: number): Promise<Buffer> {
  if (!message.compressed) return message.body;
  if (!encoding || encoding === 'identity') throw new GrpcError(Status.INTERNAL, 'a compressed message arrived without a grpc-encoding');
  const options = { maxOutputLength: maxBytes };
  try {
    if (encoding === 'gzip') return await gunzip(message.body, options);
    if (encoding === 'deflate') return await inflate(message.body, options);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new GrpcError(Status.RESOURCE_EXHAUSTED, `decompressed message larger than max (${maxBytes})`);
    throw new GrpcError(Status.INTERNAL, `cannot decompress the message (${encoding}): ${(err as Error).message}`);
  }
  throw new GrpcError(Status.UNIMPLEMENTED, `grpc-encoding ${encoding} is not supported (identity, gzip, deflate are)`);
}

/** One response message, uncompressed. */
export function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, PREFIX);
  return out;
}
