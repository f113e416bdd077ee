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

  push(chunk: Buffer): Buffer[] {
    if (this.mode === 'passthrough') return [chunk];
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
        out.push(data.subarray(0, FRAME_HEADER_LENGTH));
        this.passLeft = length;
        data = data.subarray(FRAME_HEADER_LENGTH);
        continue;
      }
      if (data.length < FRAME_HEADER_LENGTH + length) break;
      const frame = data.subarray(0, FRAME_HEADER_LENGTH + length);
      data = data.subarray(FRAME_HEADER_LENGTH + length);
      out.push(...this.headerFrame(frame));
      if ((this.mode as Mode) === 'passthrough') {
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

/** A Duplex over a client socket whose readable side is the (possibly rewritten) request stream. */
export function rewriteAuthority(socket: Socket, onError: (err: Error) => void): Duplex {
  const rewriter = new AuthorityRewriter();
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
