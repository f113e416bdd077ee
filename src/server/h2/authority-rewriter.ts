// Why this exists: Node's HTTP/2 (nghttp2) refuses a request whose :authority is not a valid URI
// authority, answering RST_STREAM PROTOCOL_ERROR. gRPC-Go clients before ~1.55 — crictl and critest
// v1.26 among them — send the unix socket's path ("/run/berth/berth.sock") as :authority. Go servers
// (containerd, CRI-O) accept it, so berth must too. This rewrites the request header blocks of a
// connection on their way in: every header block is decoded, an invalid :authority or host becomes
// "localhost" (what newer gRPC clients send for unix sockets), and the block is re-encoded with
// literals only, so the server's HPACK table stays empty and consistent. All other frames pass as they are.
// The first request header block of a connection decides: when its authority is valid (the kubelet's,
// grpc-js's) the block is passed on as it came and the rest of the connection streams through without
// being parsed, so only old clients pay for the rewrite.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { encodeLiterals, HpackDecoder, type Header } from './hpack';

const PREFACE_LENGTH = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const FRAME_HEADER_LENGTH = 9;
const TYPE_HEADERS = 0x1;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const TYPE_SETTINGS = 0x4;
const FLAG_ACK = 0x1;
/** The smallest SETTINGS_MAX_FRAME_SIZE a peer may have: re-encoded blocks are cut to fit it. */
const MAX_FRAME_PAYLOAD = 16384;
/** A header block larger than this is refused rather than buffered. */
const MAX_HEADER_BLOCK = 1024 * 1024;

const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

export class H2RewriteError extends Error {}

interface PendingHeaders {
  streamId: number;
  flags: number;
  priority: Buffer;
  fragments: Buffer[];
  length: number;
  /** The frames as they arrived, for a block passed on unchanged. */
  original: Buffer[];
}

type Mode = 'undecided' | 'passthrough' | 'rewrite';

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_LENGTH);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return h;
}

const needsFix = ([name, value]: Header): boolean =>
  (name === ':authority' || name === 'host') && !VALID_AUTHORITY.test(value);

/** The client-to-server byte stream of one HTTP/2 connection, rewritten frame by frame. */
export class AuthorityRewriter {
  private buffered = Buffer.alloc(0);
  private prefaceLeft = PREFACE_LENGTH;
  /** Payload bytes of a pass-through frame still to come. */
  private passLeft = 0;
  private pending: PendingHeaders | undefined;
  private readonly decoder = new HpackDecoder();
  /** Until the first header block: then every block is rewritten, or nothing is looked at again. */
  mode: Mode = 'undecided';
  /** SETTINGS acknowledgements still to take out of the stream: they answer a SETTINGS frame that berthd
   * sent before the HTTP/2 server took the connection, which the server itself never sent. */
  private acksToDrop = 0;

  /** The next SETTINGS ACK from the client answers the caller's own SETTINGS frame: drop it. */
  expectSettingsAck(): void {
    this.acksToDrop++;
  }

  /** True once every expected SETTINGS ACK has come (and been dropped). */
  get settingsAcked(): boolean {
    return this.acksToDrop === 0;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.mode === 'passthrough' && this.acksToDrop === 0) {
      // Nothing is looked at again: a partial frame held back goes out first.
      const held = this.buffered;
      this.buffered = Buffer.alloc(0);
      return held.length ? [held, chunk] : [chunk];
    }
    const out: Buffer[] = [];
    let data = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.buffered = Buffer.alloc(0);
    while (data.length) {
      if (this.prefaceLeft || this.passLeft) {
        const n = Math.min(data.length, this.prefaceLeft || this.passLeft);
        out.push(data.subarray(0, n));
        if (this.prefaceLeft) this.prefaceLeft -= n;
        else this.passLeft -= n;
        data = data.subarray(n);
        continue;
      }
      if (data.length < FRAME_HEADER_LENGTH) break;
      const length = data.readUIntBE(0, 3);
      const type = data[3];
      if (type !== TYPE_HEADERS && type !== TYPE_CONTINUATION) {
        if (this.pending) throw new H2RewriteError('frame interleaved inside a header block');
        if (type === TYPE_SETTINGS && data[4] & FLAG_ACK && length === 0 && this.acksToDrop > 0) {
          this.acksToDrop--;
          data = data.subarray(FRAME_HEADER_LENGTH);
          continue;
        }
        out.push(data.subarray(0, FRAME_HEADER_LENGTH));
        this.passLeft = length;
        data = data.subarray(FRAME_HEADER_LENGTH);
        continue;
      }
      if (data.length < FRAME_HEADER_LENGTH + length) break;
      const frame = data.subarray(0, FRAME_HEADER_LENGTH + length);
      data = data.subarray(FRAME_HEADER_LENGTH + length);
      out.push(...this.headerFrame(frame));
      if ((this.mode as Mode) === 'passthrough' && this.acksToDrop === 0) {
        if (data.length) out.push(Buffer.from(data));
        return out;
      }
    }
    if (data.length) this.buffered = Buffer.from(data);
    return out;
  }

  private headerFrame(frame: Buffer): Buffer[] {
    const type = frame[3];
    const flags = frame[4];
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    let payload = frame.subarray(FRAME_HEADER_LENGTH);
    if (type === TYPE_HEADERS) {
      if (this.pending) throw new H2RewriteError('HEADERS inside a header block');
      if (flags & FLAG_PADDED) {
        const pad = payload[0];
        if (pad >= payload.length) throw new H2RewriteError('HEADERS padding longer than the frame');
        payload = payload.subarray(1, payload.length - pad);
      }
      let priority = Buffer.alloc(0);
      if (flags & FLAG_PRIORITY) {
        priority = Buffer.from(payload.subarray(0, 5));
        payload = payload.subarray(5);
      }
      this.pending = { streamId, flags, priority, fragments: [], length: 0, original: [] };
    } else if (!this.pending || this.pending.streamId !== streamId) {
      throw new H2RewriteError('CONTINUATION without a header block to continue');
    }
    const pending = this.pending;
    pending.original.push(Buffer.from(frame));
    pending.fragments.push(Buffer.from(payload));
    pending.length += payload.length;
    if (pending.length > MAX_HEADER_BLOCK) throw new H2RewriteError('header block too large');
    if (!(flags & FLAG_END_HEADERS)) return [];
    this.pending = undefined;
    const headers = this.decoder.decode(Buffer.concat(pending.fragments));
    // Still parsed only to find a SETTINGS ACK: blocks pass as they came.
    if (this.mode === 'passthrough') return pending.original;
    if (this.mode === 'undecided') {
      const valid = !headers.some(needsFix);
      this.mode = valid ? 'passthrough' : 'rewrite';
      // Passed on as it came, the block leaves the server's HPACK table in step with the client's.
      if (valid) return pending.original;
    }
    return this.encodeBlock(pending, encodeLiterals(headers.map((h): Header => (needsFix(h) ? [h[0], 'localhost'] : h))));
  }

  private encodeBlock(pending: PendingHeaders, block: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    const first = Buffer.concat([pending.priority, block]);
    const firstFlags = pending.flags & (FLAG_END_STREAM | FLAG_PRIORITY);
    let rest = first.subarray(Math.min(first.length, MAX_FRAME_PAYLOAD));
    const head = first.subarray(0, MAX_FRAME_PAYLOAD);
    frames.push(frameHeader(head.length, TYPE_HEADERS, firstFlags | (rest.length ? 0 : FLAG_END_HEADERS), pending.streamId), head);
    while (rest.length) {
      const piece = rest.subarray(0, MAX_FRAME_PAYLOAD);
      rest = rest.subarray(piece.length);
      frames.push(frameHeader(piece.length, TYPE_CONTINUATION, rest.length ? 0 : FLAG_END_HEADERS, pending.streamId), piece);
    }
    return frames;
  }
}

/** How long a new connection may take to send its first request and acknowledge berthd's SETTINGS before
 * it is given the rewriting stream regardless. */
const DECIDE_TIMEOUT_MS = 2000;

/** An empty SETTINGS frame: "the defaults", the server's connection preface. */
const EMPTY_SETTINGS = frameHeader(0, TYPE_SETTINGS, 0, 0);

/**
 * Hands a new client connection to the HTTP/2 server. berthd answers the client's preface with an empty
 * SETTINGS frame of its own (gRPC clients wait for the server's SETTINGS before their first request) and
 * reads the client's bytes up to its first header block and the ACK of that SETTINGS frame, which is taken
 * out (the HTTP/2 server never sent that frame). A valid authority (the kubelet, grpc-js, newer gRPC-Go)
 * hands the socket itself over, the bytes read so far put back (Node's HTTP/2 session takes a socket's
 * buffered data), so HTTP/2 then runs natively on the socket with no JavaScript stream in between; an
 * invalid one (old gRPC-Go) gets the rewriting stream for the connection's whole life.
 */
export function handOver(socket: Socket, inject: (conn: Duplex) => void, onError: (err: Error) => void): void {
  const rewriter = new AuthorityRewriter();
  const out: Buffer[] = [];
  const decide = (): void => {
    socket.off('data', onData);
    socket.off('error', onEarlyEnd);
    socket.off('end', onEarlyEnd);
    clearTimeout(timer);
    socket.pause();
    if (rewriter.mode === 'passthrough' && rewriter.settingsAcked) {
      socket.unshift(Buffer.concat(out));
      inject(socket);
    } else {
      inject(rewritingStream(socket, rewriter, out, onError));
    }
  };
  const onData = (chunk: Buffer): void => {
    try {
      out.push(...rewriter.push(chunk));
    } catch (err) {
      onError(err as Error);
      socket.destroy();
      return;
    }
    if (rewriter.mode === 'rewrite' || (rewriter.mode === 'passthrough' && rewriter.settingsAcked)) decide();
  };
  const onEarlyEnd = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(decide, DECIDE_TIMEOUT_MS);
  timer.unref();
  socket.on('data', onData);
  socket.once('error', onEarlyEnd);
  socket.once('end', onEarlyEnd);
  rewriter.expectSettingsAck();
  socket.write(EMPTY_SETTINGS);
}

/** A Duplex over a client socket whose readable side is the (possibly rewritten) request stream. */
export function rewriteAuthority(socket: Socket, onError: (err: Error) => void): Duplex {
  return rewritingStream(socket, new AuthorityRewriter(), [], onError);
}

/** The rewriting stream, starting with `first` (what `rewriter` already made of the bytes read so far). */
function rewritingStream(socket: Socket, rewriter: AuthorityRewriter, first: Buffer[], onError: (err: Error) => void): Duplex {
  const duplex: Duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    // HTTP/2 writes a response as many frames at once: one writev syscall for them all, not one each.
    writev(chunks: Array<{ chunk: Buffer }>, callback) {
      socket.cork();
      for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i].chunk);
      socket.write(chunks[chunks.length - 1].chunk, callback);
      socket.uncork();
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  for (const f of first) duplex.push(f);
  socket.on('data', (chunk: Buffer) => {
    let frames: Buffer[];
    try {
      frames = rewriter.push(chunk);
    } catch (err) {
      onError(err as Error);
      socket.destroy();
      return;
    }
    let more = true;
    for (const f of frames) more = duplex.push(f) && more;
    if (!more) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (err) => duplex.destroy(err));
  socket.on('close', () => duplex.destroy());
  return duplex;
}
