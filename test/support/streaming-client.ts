// Clients of berth's streaming server for the tests, behaving as client-go does: remotecommand and port
// forward over SPDY/3.1 (stream order and headers of client-go's v1-v4 stream protocols and its port
// forwarder), and over WebSocket with the channel protocols (v5's CLOSE signal included).
import http from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import { SpdySession } from '../../src/streaming/spdy/session';
import type { SpdyStream } from '../../src/streaming/spdy/stream';
import type { TerminalSize } from '../../src/streaming/backend';

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: http.IncomingHttpHeaders,
  ) {
    super(`HTTP ${status}: ${body.trim()}`);
  }
}

export interface SpdyConnection {
  session: SpdySession;
  protocol: string;
}

/** The upgrade request of client-go's SPDY round tripper. */
export function spdyConnect(url: string, protocols: string[], opts: { flowControl?: boolean; method?: string } = {}): Promise<SpdyConnection> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: opts.method ?? 'POST',
      headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols },
    });
    req.on('upgrade', (res: http.IncomingMessage, socket: Socket, head: Buffer) => {
      if (head.length) socket.unshift(head);
      const session = new SpdySession(socket, { isServer: false, announceFlowControl: opts.flowControl ?? false });
      resolve({ session, protocol: String(res.headers['x-stream-protocol-version'] ?? '') });
    });
    req.on('response', (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => reject(new HttpStatusError(res.statusCode ?? 0, body, res.headers)));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface CommandOptions {
  stdin?: Buffer | Readable;
  stdout?: boolean;
  stderr?: boolean;
  tty?: boolean;
  resizes?: TerminalSize[];
  /** Called with every stdout chunk instead of collecting it (for large outputs). */
  onStdout?: (chunk: Buffer) => void;
}

export interface CommandResult {
  protocol: string;
  stdout: Buffer;
  stderr: Buffer;
  /** The error stream's contents: a JSON Status from v4 on, text before. */
  error: string;
}

export function exitCodeOf(result: CommandResult): number {
  if (!result.error) return 0;
  const status = JSON.parse(result.error) as { status: string; reason?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } };
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (status.reason !== 'NonZeroExitCode' || !cause) throw new Error(`not an exit status: ${result.error}`);
  return Number(cause.message);
}

function collect(stream: Readable, onChunk?: (chunk: Buffer) => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => (onChunk ? onChunk(c) : chunks.push(c)));
  return new Promise((resolve) => {
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

async function sendStdin(stdin: Buffer | Readable, write: (chunk: Buffer) => Promise<void>): Promise<void> {
  const source = Buffer.isBuffer(stdin) ? Readable.from([stdin]) : stdin;
  for await (const chunk of source) await write(chunk as Buffer);
}

/** client-go's streamProtocolV4 (and V2/V3): error stream first, then stdin, stdout, stderr, resize. */
export async function spdyExec(
  url: string,
  opts: CommandOptions & { protocols?: string[]; flowControl?: boolean },
): Promise<CommandResult> {
  const { session, protocol } = await spdyConnect(url, opts.protocols ?? ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'], opts);
  const open = (type: string): Promise<SpdyStream> => session.openStream({ streamtype: [type] });
  const error = await open('error');
  const stdin = opts.stdin ? await open('stdin') : undefined;
  const stdout = opts.stdout ? await open('stdout') : undefined;
  const stderr = opts.stderr ? await open('stderr') : undefined;
  const resize = opts.tty && protocol !== 'v2.channel.k8s.io' && protocol !== 'channel.k8s.io' ? await open('resize') : undefined;
  for (const size of opts.resizes ?? []) resize?.write(JSON.stringify({ Width: size.width, Height: size.height }));
  const errorText = collect(error);
  const out = stdout ? collect(stdout, opts.onStdout) : Promise.resolve(Buffer.alloc(0));
  const err = stderr ? collect(stderr) : Promise.resolve(Buffer.alloc(0));
  if (stdin && opts.stdin) {
    void sendStdin(opts.stdin, (c) => new Promise((resolve) => (stdin.write(c) ? resolve() : stdin.once('drain', resolve))))
      .then(() => stdin.end())
      .catch(() => undefined);
  }
  const [o, e, text] = await Promise.all([out, err, errorText]);
  await session.close();
  return { protocol, stdout: o, stderr: e, error: text.toString() };
}

/** client-go's port forwarder: per connection an error stream (closed at once by the client) and a data stream. */
export class SpdyPortForwarder {
  private nextRequestId = 0;

  constructor(readonly conn: SpdyConnection) {}

  static async connect(url: string): Promise<SpdyPortForwarder> {
    return new SpdyPortForwarder(await spdyConnect(url, ['portforward.k8s.io']));
  }

  async forward(port: number): Promise<{ data: SpdyStream; error: Promise<string> }> {
    const requestid = [String(this.nextRequestId++)];
    const headers = { port: [String(port)], requestid };
    const error = await this.conn.session.openStream({ ...headers, streamtype: ['error'] });
    error.end();
    const data = await this.conn.session.openStream({ ...headers, streamtype: ['data'] });
    return { data, error: collect(error).then(String) };
  }

  close(): Promise<void> {
    return this.conn.session.close();
  }
}

export function wsUrl(url: string): string {
  return url.replace(/^http/, 'ws');
}

/**
 * Opens a WebSocket with the given subprotocols (none for []); rejects with the HTTP status when refused.
 * onMessage is attached before the handshake: the server may send in the same packet as its 101.
 */
export function wsConnect(url: string, protocols: string[], onMessage?: (data: RawData) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(url), protocols, { perMessageDeflate: false });
    if (onMessage) ws.on('message', onMessage);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req: http.ClientRequest, res: http.IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => reject(new HttpStatusError(res.statusCode ?? 0, body, res.headers)));
    });
    ws.once('error', reject);
  });
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Decodes one channel message of a binary or base64 channel protocol. */
export function decodeWsMessage(data: RawData, base64: boolean): { channel: number; payload: Buffer } {
  const buf = toBuffer(data);
  if (!base64) return { channel: buf[0], payload: buf.subarray(1) };
  return { channel: buf[0] - 0x30, payload: Buffer.from(buf.subarray(1).toString(), 'base64') };
}

export function encodeWsMessage(channel: number, payload: Buffer, base64: boolean): Buffer | string {
  return base64 ? String.fromCharCode(0x30 + channel) + payload.toString('base64') : Buffer.concat([Buffer.of(channel), payload]);
}

/** remotecommand over WebSocket: stdin on channel 0 (v5 closes it with the CLOSE signal), output by channel. */
export async function wsExec(url: string, opts: CommandOptions & { protocol: string }): Promise<CommandResult> {
  const base64 = opts.protocol.includes('base64');
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const error: Buffer[] = [];
  const ws = await wsConnect(url, opts.protocol ? [opts.protocol] : [], (data: RawData) => {
    const { channel, payload } = decodeWsMessage(data, base64);
    if (channel === 1) (opts.onStdout ? opts.onStdout(payload) : out.push(payload));
    else if (channel === 2) err.push(payload);
    else if (channel === 3) error.push(payload);
  });
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const send = (channel: number, payload: Buffer): Promise<void> =>
    new Promise((resolve) => ws.send(encodeWsMessage(channel, payload, base64), () => resolve()));
  for (const size of opts.resizes ?? []) await send(4, Buffer.from(JSON.stringify({ Width: size.width, Height: size.height })));
  if (opts.stdin) {
    void sendStdin(opts.stdin, (c) => send(0, c)).then(() => {
      if (opts.protocol.startsWith('v5.')) ws.send(Buffer.of(255, 0));
    });
  }
  await closed;
  return { protocol: ws.protocol, stdout: Buffer.concat(out), stderr: Buffer.concat(err), error: Buffer.concat(error).toString() };
}

const ZEROS = Buffer.alloc(1 << 20);

/** Whether every byte of the chunk is 0 (for checking that a stream of /dev/zero arrived intact). */
export function allZero(chunk: Buffer): boolean {
  for (let i = 0; i < chunk.length; i += ZEROS.length) {
    const part = chunk.subarray(i, i + ZEROS.length);
    if (!part.equals(ZEROS.subarray(0, part.length))) return false;
  }
  return true;
}
