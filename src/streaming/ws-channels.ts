// Channels over one WebSocket, as k8s.io/apimachinery's wsstream: every message starts with a channel
// number (binary protocols) or its ASCII digit followed by base64 (base64.* protocols). Channels carry no
// end-of-stream of their own; v5.channel.k8s.io adds one from the client, the CLOSE signal: a message of
// channel 255 whose one byte names the channel to close.
import { Duplex } from 'node:stream';
import type { WebSocket, RawData } from 'ws';

const CLOSE_SIGNAL = 255;
/** After close(), how long the client gets to answer the close frame before the socket is cut. */
const CLOSE_GRACE_MS = 2000;

export interface ChannelSpec {
  read: boolean;
  write: boolean;
}

export interface ChannelConnOptions {
  base64: boolean;
  /** v5: honour the client's CLOSE signal. */
  closeSignal: boolean;
  idleTimeoutMs: number;
}

/** One channel: readable is what the client sends on it, writes go to the client. */
export class WsChannel extends Duplex {
  constructor(
    readonly num: number,
    private readonly conn: WsChannelConn,
    readonly spec: ChannelSpec,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    if (!spec.read) this.push(null);
    // Errors reach whoever pipes this channel; without one listening they must not bring berthd down.
    this.on('error', () => undefined);
  }

  /** The client sent data on this channel; false when the reader is behind. */
  fromClient(data: Buffer): boolean {
    if (!this.spec.read || this.readableEnded || this.destroyed) return true;
    return this.push(data);
  }

  closeRead(): void {
    if (this.spec.read && !this.readableEnded && !this.destroyed) this.push(null);
  }

  override _read(): void {
    this.conn.resumeReading();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // An ignored channel swallows writes, as wsstream's does.
    if (!this.spec.write) return cb();
    this.conn.send(this.num, chunk).then(() => cb(), cb);
  }
}

export class WsChannelConn {
  readonly channels: WsChannel[];
  private readonly idleTimer: NodeJS.Timeout | undefined;
  private paused = false;
  readonly closed: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    specs: ChannelSpec[],
    private readonly opts: ChannelConnOptions,
  ) {
    this.channels = specs.map((spec, i) => new WsChannel(i, this, spec));
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(toBuffer(data), isBinary));
    ws.on('error', () => ws.terminate());
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    void this.closed.then(() => this.onClose());
    if (opts.idleTimeoutMs) {
      this.idleTimer = setTimeout(() => void this.close(), opts.idleTimeoutMs);
      this.idleTimer.unref();
    }
  }

  get protocol(): string {
    return this.ws.protocol;
  }

  /** Sends one message on a channel; resolves once it has been handed to the socket (backpressure). */
  send(num: number, data: Buffer): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) return Promise.reject(new Error('the WebSocket connection is closed'));
    this.idleTimer?.refresh();
    const message = this.opts.base64
      ? String.fromCharCode(0x30 + num) + data.toString('base64')
      : Buffer.concat([Buffer.of(num), data]);
    return new Promise((resolve, reject) => {
      this.ws.send(message, { binary: !this.opts.base64 }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Closes with a normal close frame; the socket is cut if the client does not answer. */
  async close(code = 1000): Promise<void> {
    if (this.ws.readyState === this.ws.CLOSED) return;
    if (this.ws.readyState !== this.ws.CLOSING) this.ws.close(code);
    const timer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    timer.unref();
    await this.closed;
    clearTimeout(timer);
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.ws.resume();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.idleTimer?.refresh();
    if (!data.length) return;
    if (this.opts.closeSignal && data[0] === CLOSE_SIGNAL) return this.onCloseSignal(data);
    const decoded = this.decode(data, isBinary);
    if (!decoded) return;
    const channel = this.channels[decoded.num];
    if (!channel) return; // a channel this session does not have: ignored, as wsstream does
    if (!channel.fromClient(decoded.payload) && !this.paused) {
      // One reader behind holds the whole connection, as wsstream's pipes do.
      this.paused = true;
      this.ws.pause();
    }
  }

  private decode(data: Buffer, isBinary: boolean): { num: number; payload: Buffer } | undefined {
    if (!this.opts.base64) return { num: data[0], payload: data.subarray(1) };
    if (isBinary) return undefined;
    return { num: data[0] - 0x30, payload: Buffer.from(data.subarray(1).toString('latin1'), 'base64') };
  }

  /** A malformed CLOSE signal ends the connection, as in wsstream. */
  private onCloseSignal(data: Buffer): void {
    const channel = data.length === 2 ? this.channels[data[1]] : undefined;
    if (!channel) {
      void this.close(1002);
      return;
    }
    channel.closeRead();
  }

  private onClose(): void {
    clearTimeout(this.idleTimer);
    for (const channel of this.channels) channel.destroy();
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
