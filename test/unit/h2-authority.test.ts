import { describe, expect, it } from 'vitest';
import { AuthorityRewriter, H2RewriteError } from '../../src/server/h2/authority-rewriter';
import { encodeLiterals, HpackDecoder, huffmanDecode, type Header } from '../../src/server/h2/hpack';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HPACK decoder', () => {
  it('decodes the RFC 7541 C.4 requests (Huffman, dynamic table across blocks)', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).toEqual([
      [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'],
    ]);
    expect(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))).toEqual([
      [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache'],
    ]);
    expect(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))).toEqual([
      [':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
  });

  it('decodes the RFC 7541 C.2.4 indexed field and C.2.2 literal without indexing', () => {
    expect(new HpackDecoder().decode(hex('82'))).toEqual([[':method', 'GET']]);
    expect(new HpackDecoder().decode(hex('040c 2f73 616d 706c 652f 7061 7468'))).toEqual([[':path', '/sample/path']]);
  });

  it('refuses an index past the table and bad Huffman padding', () => {
    expect(() => new HpackDecoder().decode(hex('be'))).toThrow(/not in the table/);
    expect(() => huffmanDecode(hex('00'))).toThrow(/padding/);
  });

  it('round-trips literals without indexing', () => {
    const headers: Header[] = [[':path', '/runtime.v1.RuntimeService/Version'], ['x-long', 'v'.repeat(300)]];
    expect(new HpackDecoder().decode(encodeLiterals(headers))).toEqual(headers);
  });
});

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Splits the rewritten stream back into frames (after the preface) and decodes header blocks. */
function readBack(stream: Buffer): { frames: Array<{ type: number; flags: number; payload: Buffer }>; headers: Header[][] } {
  expect(stream.subarray(0, 24)).toEqual(PREFACE);
  const frames = [];
  let rest = stream.subarray(24);
  while (rest.length) {
    const len = rest.readUIntBE(0, 3);
    frames.push({ type: rest[3], flags: rest[4], payload: rest.subarray(9, 9 + len) });
    rest = rest.subarray(9 + len);
  }
  const decoder = new HpackDecoder();
  const headers: Header[][] = [];
  let block: Buffer[] = [];
  for (const f of frames) {
    if (f.type !== 1 && f.type !== 9) continue;
    block.push(f.type === 1 && f.flags & 0x20 ? f.payload.subarray(5) : f.payload);
    if (f.flags & 4) {
      headers.push(decoder.decode(Buffer.concat(block)));
      block = [];
    }
  }
  return { frames, headers };
}

describe('authority rewriter', () => {
  it('replaces a socket-path :authority with localhost and passes other frames through, in any chunking', () => {
    const encoder = encodeLiterals([[':method', 'POST'], [':authority', '/run/berth/berth.sock'], [':path', '/x']]);
    const settings = frame(4, 0, 0, Buffer.alloc(6));
    const data = frame(0, 1, 1, Buffer.from('hello grpc'));
    const input = Buffer.concat([PREFACE, settings, frame(1, 4, 1, encoder), data]);
    const rewriter = new AuthorityRewriter();
    const out: Buffer[] = [];
    for (let i = 0; i < input.length; i += 7) out.push(...rewriter.push(input.subarray(i, i + 7)));
    const { frames, headers } = readBack(Buffer.concat(out));
    expect(headers).toEqual([[[':method', 'POST'], [':authority', 'localhost'], [':path', '/x']]]);
    expect(frames.map((f) => f.type)).toEqual([4, 1, 0]);
    expect(frames[2].payload.toString()).toBe('hello grpc');
  });

  it('joins CONTINUATION frames, strips padding, keeps END_STREAM and priority when it rewrites', () => {
    const block = encodeLiterals([[':authority', '/run/berth.sock'], ['x-a', 'b']]);
    const padded = Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 16]), block.subarray(0, 5), Buffer.alloc(3)]);
    const input = Buffer.concat([
      PREFACE,
      frame(1, 0x1 | 0x8 | 0x20, 3, padded),
      frame(9, 0x4, 3, block.subarray(5)),
    ]);
    const { frames, headers } = readBack(Buffer.concat(new AuthorityRewriter().push(input)));
    expect(headers).toEqual([[[':authority', 'localhost'], ['x-a', 'b']]]);
    expect(frames).toHaveLength(1);
    expect(frames[0].flags).toBe(0x1 | 0x4 | 0x20);
    expect(frames[0].payload.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 0, 16]));
  });

  it('passes a connection whose first request has a valid authority through byte for byte', () => {
    const first = encodeLiterals([[':authority', 'localhost'], [':path', '/a']]);
    const second = Buffer.from([0xbe]); // refers to the client's dynamic table: must reach the server unchanged
    const input = Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 4, 1, first), frame(1, 5, 3, second)]);
    const rewriter = new AuthorityRewriter();
    const out: Buffer[] = [];
    for (let i = 0; i < input.length; i += 5) out.push(...rewriter.push(input.subarray(i, i + 5)));
    expect(Buffer.concat(out)).toEqual(input);
    expect(rewriter.mode).toBe('passthrough');
  });

  it('once rewriting, re-encodes every later block, resolving the client table itself', () => {
    // Literal with incremental indexing of :authority (static name index 1): lands in the client table.
    const first = Buffer.concat([Buffer.from([0x41, 4]), Buffer.from('/a/b')]);
    const second = Buffer.from([0xbe]); // index 62: the first dynamic entry, the bad authority again
    const input = Buffer.concat([PREFACE, frame(1, 4, 1, first), frame(1, 4, 3, second)]);
    const { headers } = readBack(Buffer.concat(new AuthorityRewriter().push(input)));
    expect(headers).toEqual([[[':authority', 'localhost']], [[':authority', 'localhost']]]);
  });

  it('splits a re-encoded block larger than a frame into CONTINUATION frames', () => {
    const big = encodeLiterals([[':authority', '/a/b'], ['x-big', 'z'.repeat(40000)]]);
    const input = Buffer.concat([PREFACE, frame(1, 0, 1, big.subarray(0, 16000)), frame(9, 0, 1, big.subarray(16000, 32000)), frame(9, 4, 1, big.subarray(32000))]);
    const { frames, headers } = readBack(Buffer.concat(new AuthorityRewriter().push(input)));
    expect(frames.map((f) => f.type)).toEqual([1, 9, 9]);
    expect(frames.every((f) => f.payload.length <= 16384)).toBe(true);
    expect(headers[0][0]).toEqual([':authority', 'localhost']);
    expect(headers[0][1][1]).toHaveLength(40000);
  });

  it('refuses a CONTINUATION with no header block open', () => {
    expect(() => new AuthorityRewriter().push(Buffer.concat([PREFACE, frame(9, 4, 1, Buffer.alloc(0))]))).toThrow(H2RewriteError);
  });
});
