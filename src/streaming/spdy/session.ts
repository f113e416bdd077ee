// A SPDY/3.1 session over one socket: frames in, frames out, streams, flow control, pings, GOAWAY, and
// an idle timeout. It serves both ends (berth's server side; the tests' client side), and knows nothing
// of what the streams carry.
//
// Flow control: SPDY/3.1 gives every stream and the session a 64 KiB send window. Go's spdystream — which
// kubectl, crictl, the kubelet and the API server all use — neither announces nor sends WINDOW_UPDATE and
// ignores the ones it receives, so a sender that waited for window updates from it would stall after
// 64 KiB. berth therefore enforces the peer's windows only once the peer has shown it does flow control
// (a SETTINGS frame with an initial window size, or any WINDOW_UPDATE). Towards spdystream, backpressure is
// TCP's: berth never writes a frame before the socket has drained the previous ones, and stops reading
// the socket while a stream's reader lags more than a window behind.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  DEFAULT_WINDOW,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameParser,
  FrameType,
  GoAwayStatus,
  RstStatus,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SPDY_VERSION,
  dataFrame,
  goAwayFrame,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  synReplyFrame,
  synStreamFrame,
  windowUpdateFrame,
  type Frame,
} from './frames';
import { HeaderCompressor, HeaderDecompressor, type SpdyHeaders } from './header-codec';
import { SpdyStream, type StreamOwner } from './stream';

/** DATA frames berth sends carry at most this much (as io.Copy's 32 KiB buffers in Go peers). */
const MAX_DATA_PAYLOAD = 32 * 1024;
/** After close(), how long the peer gets to close its side before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

export interface SpdySessionOptions {
  isServer: boolean;
  /** Close the session when no frame has been read or written for this long; 0 disables. */
  idleTimeoutMs?: number;
  /** Announce flow control with a SETTINGS frame at start (as SPDY/3.1 browsers do; spdystream does not). */
  announceFlowControl?: boolean;
  /** A stream the peer opened; return false to refuse it with RST_STREAM. */
  onStream?: (stream: SpdyStream) => boolean;
}

export class SpdyProtocolError extends Error {}

export class SpdySession extends EventEmitter implements StreamOwner {
  private readonly streams = new Map<number, SpdyStream>();
  private readonly parser = new FrameParser();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private nextStreamId: number;
  private lastRemoteStreamId = 0;
  private nextPingId: number;
  private readonly pings = new Map<number, () => void>();
  private outTail: Promise<unknown> = Promise.resolve();
  private inTail: Promise<unknown> = Promise.resolve();
  private enforceWindows = false;
  private initialSendWindow = DEFAULT_WINDOW;
  private sessionSendWindow = DEFAULT_WINDOW;
  private sessionWaiters: Array<() => void> = [];
  private sessionRecvUnacked = 0;
  private goneAway = false;
  private sentGoAway = false;
  private closing = false;
  /** The socket is gone while frames read before are still being handled: nobody is waited for. */
  private socketGone = false;
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    private readonly opts: SpdySessionOptions,
  ) {
    super();
    this.nextStreamId = opts.isServer ? 2 : 1;
    this.nextPingId = opts.isServer ? 2 : 1;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.ingest(chunk));
    // Frames already read are handled before the streams learn that the connection is gone.
    socket.on('end', () => void this.inTail.then(() => this.destroy()));
    socket.on('error', () => this.destroy());
    socket.on('close', () => {
      this.socketGone = true;
      for (const stream of this.streams.values()) stream.releaseReader();
      void this.inTail.then(() => this.onSocketClose());
    });
    if (opts.idleTimeoutMs) {
      this.idleTimer = setTimeout(() => void this.close(), opts.idleTimeoutMs);
      this.idleTimer.unref();
    }
    if (opts.announceFlowControl) {
      void this.enqueue(() => settingsFrame([{ id: SETTINGS_INITIAL_WINDOW_SIZE, value: DEFAULT_WINDOW }]));
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Client side: opens a stream; resolves once the peer's SYN_REPLY arrived. */
  async openStream(headers: SpdyHeaders): Promise<SpdyStream> {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new SpdyStream(id, headers, this, this.initialSendWindow, { replied: false });
    this.streams.set(id, stream);
    const replied = new Promise<void>((resolve, reject) => {
      stream.once('spdy-reply', resolve);
      stream.once('close', () => reject(new SpdyProtocolError(`stream ${id} was reset before its reply`)));
    });
    await this.enqueue(async () => synStreamFrame(id, await this.compressor.compress(headers), 0));
    await replied;
    return stream;
  }

  /** Round trip of a PING frame. */
  ping(): Promise<void> {
    const id = this.nextPingId;
    this.nextPingId += 2;
    return new Promise((resolve) => {
      this.pings.set(id, resolve);
      void this.enqueue(() => pingFrame(id));
    });
  }

  /**
   * Ends the session as the kubelet's does: every open stream is reset, GOAWAY is sent after every frame
   * already queued, and the socket is closed (destroyed if the peer has not closed it after a grace time).
   */
  async close(): Promise<void> {
    if (this.closing || this.closed) return this.closedPromise();
    this.closing = true;
    for (const stream of [...this.streams.values()]) stream.reset(RstStatus.CANCEL);
    this.goAway(GoAwayStatus.OK);
    await this.outTail;
    this.socket.end();
    this.graceTimer = setTimeout(() => this.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
    return this.closedPromise();
  }

  destroy(): void {
    this.socket.destroy();
  }

  // --- StreamOwner ---

  async sendData(stream: SpdyStream, chunk: Buffer, fin: boolean): Promise<void> {
    let offset = 0;
    for (;;) {
      if (stream.orphaned) return;
      let n = Math.min(chunk.length - offset, MAX_DATA_PAYLOAD);
      if (n > 0 && this.enforceWindows) {
        await this.whenSendable(stream);
        n = Math.min(n, stream.sendWindow, this.sessionSendWindow);
      }
      if (stream.destroyed || stream.orphaned || this.closed) return;
      const piece = chunk.subarray(offset, offset + n);
      offset += n;
      stream.sendWindow -= n;
      this.sessionSendWindow -= n;
      const last = offset >= chunk.length;
      await this.enqueue(() => dataFrame(stream.id, piece, fin && last));
      if (last) return;
    }
  }

  streamConsumed(stream: SpdyStream): void {
    const consumed = stream.recvTotal - stream.readableLength - stream.recvAcked;
    if (consumed < DEFAULT_WINDOW / 2 || stream.remoteEnded) return;
    stream.recvAcked += consumed;
    void this.enqueue(() => windowUpdateFrame(stream.id, consumed));
  }

  streamDone(stream: SpdyStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    if (this.goneAway && this.streams.size === 0 && !this.closing) void this.close();
  }

  reset(stream: SpdyStream, status: number): void {
    this.streams.delete(stream.id);
    void this.enqueue(() => rstStreamFrame(stream.id, status));
  }

  // --- outgoing ---

  /** Frames leave in call order: header blocks share one zlib stream, and a reply must precede its data. */
  private enqueue(build: () => Buffer | Promise<Buffer>): Promise<void> {
    const step = async (): Promise<void> => {
      const frame = await build();
      if (this.closed || this.socket.destroyed || !this.socket.writable) return;
      this.touch();
      if (!this.socket.write(frame)) await this.drained();
    };
    const done = this.outTail.then(step);
    this.outTail = done.catch(() => undefined);
    return done;
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private async whenSendable(stream: SpdyStream): Promise<void> {
    while (!stream.destroyed && !this.closed) {
      if (stream.sendWindow <= 0) await stream.whenWritable();
      else if (this.sessionSendWindow <= 0) await new Promise<void>((resolve) => this.sessionWaiters.push(resolve));
      else return;
    }
  }

  private goAway(status: number): void {
    if (this.sentGoAway) return;
    this.sentGoAway = true;
    this.goneAway = true;
    void this.enqueue(() => goAwayFrame(this.lastRemoteStreamId, status));
  }

  private touch(): void {
    this.idleTimer?.refresh();
  }

  // --- incoming ---

  /** Frames are handled strictly in order; the socket is paused while a frame's handling waits. */
  private ingest(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.parser.push(chunk);
    } catch {
      return this.protocolError();
    }
    if (!frames.length) return;
    this.socket.pause();
    const run = async (): Promise<void> => {
      for (const frame of frames) {
        if (this.closed) return;
        this.touch();
        await this.handleFrame(frame);
      }
      if (!this.closed) this.socket.resume();
    };
    const done = this.inTail.then(run);
    this.inTail = done.catch(() => this.protocolError());
  }

  private async handleFrame(frame: Frame): Promise<void> {
    if (frame.kind === 'data') return this.onData(frame.streamId, frame.flags, frame.payload);
    if (frame.version !== SPDY_VERSION) throw new SpdyProtocolError(`SPDY version ${frame.version} is not 3`);
    const p = frame.payload;
    switch (frame.type) {
      case FrameType.SYN_STREAM:
        return this.onSynStream(p.readUInt32BE(0) & 0x7fffffff, frame.flags, await this.decompressor.decompress(p.subarray(10)));
      case FrameType.SYN_REPLY:
        await this.decompressor.decompress(p.subarray(4));
        return this.onSynReply(p.readUInt32BE(0) & 0x7fffffff, frame.flags);
      case FrameType.HEADERS:
        await this.decompressor.decompress(p.subarray(4));
        if (frame.flags & FLAG_FIN) this.streams.get(p.readUInt32BE(0) & 0x7fffffff)?.onRemoteFin();
        return;
      case FrameType.RST_STREAM:
        this.streams.get(p.readUInt32BE(0) & 0x7fffffff)?.orphan();
        return;
      case FrameType.SETTINGS:
        return this.onSettings(p);
      case FrameType.PING:
        return this.onPing(p.readUInt32BE(0));
      case FrameType.GOAWAY:
        this.goneAway = true;
        if (this.streams.size === 0) void this.close();
        return;
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(p.readUInt32BE(0) & 0x7fffffff, p.readUInt32BE(4) & 0x7fffffff);
      default:
        return; // unknown control frames are ignored (SPDY/3 section 2.2.1)
    }
  }

  private onSynStream(id: number, flags: number, headers: SpdyHeaders): void {
    const validId = id !== 0 && id > this.lastRemoteStreamId && (id % 2 === 1) === this.opts.isServer;
    if (!validId) {
      void this.enqueue(() => rstStreamFrame(id, RstStatus.PROTOCOL_ERROR));
      return;
    }
    this.lastRemoteStreamId = id;
    if (this.goneAway || this.closing) {
      void this.enqueue(() => rstStreamFrame(id, RstStatus.REFUSED_STREAM));
      return;
    }
    // Writes wait for the reply: spdystream drops DATA on a stream it has no SYN_REPLY for.
    const stream = new SpdyStream(id, headers, this, this.initialSendWindow, { replied: false });
    this.streams.set(id, stream);
    const accepted = this.opts.onStream?.(stream) ?? false;
    if (!accepted) return stream.reset(RstStatus.CANCEL);
    void this.enqueue(async () => synReplyFrame(id, await this.compressor.compress({}), 0));
    stream.onReply();
    if (flags & FLAG_FIN) stream.onRemoteFin();
    if (flags & FLAG_UNIDIRECTIONAL) stream.end();
  }

  private onSynReply(id: number, flags: number): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    stream.onReply();
    stream.emit('spdy-reply');
    if (flags & FLAG_FIN) stream.onRemoteFin();
  }

  private async onData(id: number, flags: number, payload: Buffer): Promise<void> {
    this.sessionRecvUnacked += payload.length;
    if (this.sessionRecvUnacked >= DEFAULT_WINDOW / 2) {
      const delta = this.sessionRecvUnacked;
      this.sessionRecvUnacked = 0;
      void this.enqueue(() => windowUpdateFrame(0, delta));
    }
    const stream = this.streams.get(id);
    if (!stream) return; // reset or unknown: dropped, as spdystream does
    if (payload.length) stream.onData(payload);
    if (flags & FLAG_FIN) stream.onRemoteFin();
    // A peer within its window never waits here; one that ignores windows waits for the reader (TCP backpressure).
    if (stream.unread > DEFAULT_WINDOW && !this.socketGone) await stream.whenRead();
  }

  private onSettings(p: Buffer): void {
    const count = p.readUInt32BE(0);
    for (let i = 0; i < count && 8 + i * 8 <= p.length; i++) {
      const id = p.readUInt32BE(4 + i * 8) & 0xffffff;
      const value = p.readUInt32BE(8 + i * 8);
      if (id !== SETTINGS_INITIAL_WINDOW_SIZE) continue;
      this.enforceWindows = true;
      const delta = value - this.initialSendWindow;
      this.initialSendWindow = value;
      for (const stream of this.streams.values()) stream.addSendWindow(delta);
    }
  }

  private onPing(id: number): void {
    const ours = (id % 2 === 0) === this.opts.isServer;
    if (!ours) {
      void this.enqueue(() => pingFrame(id));
      return;
    }
    this.pings.get(id)?.();
    this.pings.delete(id);
  }

  private onWindowUpdate(id: number, delta: number): void {
    this.enforceWindows = true;
    if (id === 0) {
      this.sessionSendWindow += delta;
      this.wakeSessionWaiters();
      return;
    }
    this.streams.get(id)?.addSendWindow(delta);
  }

  private protocolError(): void {
    if (this.closed) return;
    this.goAway(GoAwayStatus.PROTOCOL_ERROR);
    void this.outTail.then(() => this.destroy());
  }

  private wakeSessionWaiters(): void {
    const waiters = this.sessionWaiters;
    this.sessionWaiters = [];
    for (const w of waiters) w();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.graceTimer);
    // Streams keep what they received (readers see the end after it); nothing more can be sent.
    for (const stream of [...this.streams.values()]) stream.orphan();
    this.streams.clear();
    this.wakeSessionWaiters();
    for (const resolve of this.pings.values()) resolve();
    this.compressor.close();
    this.decompressor.close();
    this.emit('close');
  }

  private closedPromise(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.once('close', resolve));
  }
}
