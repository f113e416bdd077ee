// SPDY/3.1 frame layout: encoders for the frames berth sends and an incremental parser for what arrives.
// Control frames: C bit, version 3, type, flags, 24-bit length. Data frames: stream ID, flags, length.
// Header blocks are carried compressed (see header-codec.ts); this file only places them in frames.

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export const SETTINGS_INITIAL_WINDOW_SIZE = 7;
/** Every stream and the session start with this window (SPDY/3.1 section 2.6.8). */
export const DEFAULT_WINDOW = 64 * 1024;
export const MAX_FRAME_LENGTH = 0xffffff;

export type Frame =
  | { kind: 'data'; streamId: number; flags: number; payload: Buffer }
  | { kind: 'control'; version: number; type: number; flags: number; payload: Buffer };

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_LENGTH) throw new RangeError(`SPDY control frame of ${payload.length} bytes is too large`);
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) << 24 | payload.length) >>> 0, 4);
  return Buffer.concat([head, payload]);
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

export function dataFrame(streamId: number, payload: Buffer, fin: boolean): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE(((fin ? FLAG_FIN : 0) << 24 | payload.length) >>> 0, 4);
  return payload.length ? Buffer.concat([head, payload]) : head;
}

export function synStreamFrame(streamId: number, headerBlock: Buffer, flags: number, priority = 0): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(streamId & 0x7fffffff, 0);
  fixed.writeUInt32BE(0, 4); // associated-to-stream-id: none
  fixed[8] = (priority & 0x7) << 5;
  fixed[9] = 0; // credential slot
  return controlFrame(FrameType.SYN_STREAM, flags, Buffer.concat([fixed, headerBlock]));
}

export function synReplyFrame(streamId: number, headerBlock: Buffer, flags: number): Buffer {
  return controlFrame(FrameType.SYN_REPLY, flags, Buffer.concat([u32s(streamId & 0x7fffffff), headerBlock]));
}

export function rstStreamFrame(streamId: number, status: number): Buffer {
  return controlFrame(FrameType.RST_STREAM, 0, u32s(streamId & 0x7fffffff, status));
}

export function settingsFrame(entries: Array<{ id: number; value: number; flags?: number }>): Buffer {
  const values = entries.flatMap((e) => [((e.flags ?? 0) << 24 | (e.id & 0xffffff)) >>> 0, e.value]);
  return controlFrame(FrameType.SETTINGS, 0, u32s(entries.length, ...values));
}

export function pingFrame(id: number): Buffer {
  return controlFrame(FrameType.PING, 0, u32s(id));
}

export function goAwayFrame(lastGoodStreamId: number, status: number): Buffer {
  return controlFrame(FrameType.GOAWAY, 0, u32s(lastGoodStreamId & 0x7fffffff, status));
}

export function windowUpdateFrame(streamId: number, delta: number): Buffer {
  return controlFrame(FrameType.WINDOW_UPDATE, 0, u32s(streamId & 0x7fffffff, delta & 0x7fffffff));
}

/**
 * Splits a byte stream into frames. Bytes are kept only until a frame is complete, so the parser
 * never holds more than one frame (at most 16 MiB, the format's limit) plus what arrived after it.
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      const frame = this.next();
      if (!frame) return frames;
      frames.push(frame);
    }
  }

  private next(): Frame | undefined {
    if (this.buffered < 8) return undefined;
    const head = this.peek(8);
    const length = head.readUInt32BE(4) & 0xffffff;
    if (this.buffered < 8 + length) return undefined;
    const whole = this.take(8 + length);
    const payload = whole.subarray(8);
    const flags = head[4];
    const first = head.readUInt32BE(0);
    if (first & 0x80000000) {
      return { kind: 'control', version: (first >>> 16) & 0x7fff, type: first & 0xffff, flags, payload };
    }
    return { kind: 'data', streamId: first & 0x7fffffff, flags, payload };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0];
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
