// A client of a berth-monitor's attach socket (docs/monitor.md): output arrives as frames
// [stream id][u32 BE length][payload] — 1 stdout, 2 stderr, 3 the exit status as JSON at the end —
// and whatever is written to the socket is the container's stdin; half-closing ends this client's stdin.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import type { ExitStatus } from './monitor';

export const STREAM_STDOUT = 1;
export const STREAM_STDERR = 2;
export const STREAM_EXIT = 3;

export interface AttachFrame {
  stream: number;
  payload: Buffer;
}

/** Splits the byte stream from the monitor into frames (object mode out). */
export class FrameDecoder extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  constructor() {
    super({ readableObjectMode: true });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + length) break;
      this.push({ stream: this.pending[0], payload: this.pending.subarray(5, 5 + length) } satisfies AttachFrame);
      this.pending = this.pending.subarray(5 + length);
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    done(this.pending.length ? new Error(`the monitor's attach stream ended inside a frame (${this.pending.length} bytes left)`) : null);
  }
}

/**
 * Connects to a unix socket by path. A path longer than a socket address holds (108 bytes) is reached
 * through /proc/self/fd/<dir fd>/<name>, the way the monitor binds it.
 */
export function connectUnix(socketPath: string): Promise<net.Socket> {
  let dirFd: number | undefined;
  let target = socketPath;
  if (Buffer.byteLength(socketPath) >= 108) {
    dirFd = fs.openSync(path.dirname(socketPath), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    target = `/proc/self/fd/${dirFd}/${path.basename(socketPath)}`;
  }
  return new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ path: target, allowHalfOpen: true });
    const done = () => {
      if (dirFd !== undefined) fs.closeSync(dirFd);
      dirFd = undefined;
    };
    socket.once('connect', () => {
      done();
      resolve(socket);
    });
    socket.once('error', (err) => {
      done();
      reject(err);
    });
  });
}

export function parseExitFrame(payload: Buffer): Partial<ExitStatus> {
  return JSON.parse(payload.toString('utf8')) as Partial<ExitStatus>;
}

/** Sends one command line to a monitor's control socket; rejects unless it answers "ok". */
export async function controlCommand(socketPath: string, line: string): Promise<void> {
  const reply = await controlExchange(socketPath, line);
  if (reply !== 'ok') throw new Error(`monitor refused ${JSON.stringify(line)}: ${reply || 'no reply'}`);
}

async function controlExchange(socketPath: string, line: string): Promise<string> {
  const socket = await connectUnix(socketPath);
  return new Promise<string>((resolve, reject) => {
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      reply += d;
      if (reply.includes('\n')) {
        socket.destroy();
        resolve(reply.trim());
      }
    });
    socket.on('error', reject);
    socket.on('end', () => resolve(reply.trim()));
    socket.write(`${line}\n`);
  });
}
