// One SPDY stream as a Node Duplex: what the peer sends is readable, what berth writes goes out as DATA
// frames (FIN on end()). The session does the framing; the stream keeps its flow-control accounting.
import { Duplex } from 'node:stream';
import { DEFAULT_WINDOW } from './frames';
import type { SpdyHeaders } from './header-codec';

/** What a stream needs from its session; implemented by SpdySession. */
export interface StreamOwner {
  sendData(stream: SpdyStream, chunk: Buffer, fin: boolean): Promise<void>;
  /** The stream's reader made room: acknowledge consumed bytes and let a blocked connection go on. */
  streamConsumed(stream: SpdyStream): void;
  /** Both directions are finished: forget the stream. */
  streamDone(stream: SpdyStream): void;
  reset(stream: SpdyStream, status: number): void;
}

export class SpdyStream extends Duplex {
  /** Bytes the peer may still send us before it must wait for a WINDOW_UPDATE. */
  recvAcked = 0;
  recvTotal = 0;
  sendWindow: number;
  remoteEnded = false;
  localEnded = false;
  /** The peer reset the stream or the connection is gone: writes are dropped, reads end after the buffer. */
  orphaned = false;
  private wakeWriters: Array<() => void> = [];
  private wakeReader: (() => void) | undefined;
  private replyWaiter: Promise<void>;
  private markReplied: () => void = () => undefined;

  constructor(
    readonly id: number,
    readonly headers: SpdyHeaders,
    private readonly owner: StreamOwner,
    initialSendWindow: number,
    opts: { replied: boolean },
  ) {
    super({ readableHighWaterMark: DEFAULT_WINDOW, writableHighWaterMark: DEFAULT_WINDOW, allowHalfOpen: true });
    this.sendWindow = initialSendWindow;
    this.replyWaiter = opts.replied ? Promise.resolve() : new Promise((resolve) => (this.markReplied = resolve));
    // Errors reach whoever pipes this stream; without one listening they must not bring berthd down.
    this.on('error', () => undefined);
  }

  /** Bytes received and not yet read by the consumer. */
  get unread(): number {
    return this.readableLength;
  }

  onReply(): void {
    this.markReplied();
  }

  onData(payload: Buffer): void {
    if (this.remoteEnded || this.destroyed) return;
    this.recvTotal += payload.length;
    this.push(payload);
  }

  onRemoteFin(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.push(null);
    this.maybeDone();
  }

  /**
   * The peer reset the stream (or the connection ended). As in spdystream, what arrived before stays
   * readable and the reader then sees the end; nothing more can be sent.
   */
  orphan(): void {
    if (this.orphaned || this.destroyed) return;
    this.orphaned = true;
    this.wake();
    this.markReplied();
    this.owner.streamDone(this);
    if (!this.remoteEnded) {
      this.remoteEnded = true;
      this.push(null);
    }
    if (this.readableLength === 0 || this.readableEnded) this.destroy();
    else this.once('end', () => this.destroy());
  }

  /** Resolves when the consumer has read enough that the buffer is below one window again. */
  whenRead(): Promise<void> {
    if (this.readableLength <= DEFAULT_WINDOW || this.destroyed || this.orphaned) return Promise.resolve();
    return new Promise((resolve) => (this.wakeReader = resolve));
  }

  /** Stops holding up the connection for this stream's reader. */
  releaseReader(): void {
    const wake = this.wakeReader;
    this.wakeReader = undefined;
    wake?.();
  }

  addSendWindow(delta: number): void {
    this.sendWindow += delta;
    this.wake();
  }

  /** Resolves when the peer's window has room (or the stream is gone). */
  whenWritable(): Promise<void> {
    if (this.sendWindow > 0 || this.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.wakeWriters.push(resolve));
  }

  override _read(): void {
    if (!this.orphaned) this.owner.streamConsumed(this);
    const wake = this.wakeReader;
    this.wakeReader = undefined;
    wake?.();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.orphaned) return cb();
    this.replyWaiter.then(() => this.owner.sendData(this, chunk, false)).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.orphaned) return cb();
    this.replyWaiter
      .then(() => this.owner.sendData(this, Buffer.alloc(0), true))
      .then(() => {
        this.localEnded = true;
        this.maybeDone();
        cb();
      }, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.wake();
    this.wakeReader?.();
    this.markReplied();
    this.owner.streamDone(this);
    cb(err);
  }

  /** RST_STREAM from berth's side: the peer is told, then the stream is torn down. */
  reset(status: number): void {
    if (this.destroyed) return;
    this.owner.reset(this, status);
    this.destroy();
  }

  private wake(): void {
    const waiters = this.wakeWriters;
    this.wakeWriters = [];
    for (const w of waiters) w();
  }

  private maybeDone(): void {
    if (this.remoteEnded && this.localEnded) this.owner.streamDone(this);
  }
}
