// SPDY pieces checked against data made independently of berth: the dictionary's Adler-32 (what a
// peer's zlib verifies) and header blocks compressed by Python's zlib with Go's spdystream dictionary.
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SPDY3_DICTIONARY } from '../../src/streaming/spdy/dictionary';
import { FrameParser, dataFrame, rstStreamFrame, windowUpdateFrame } from '../../src/streaming/spdy/frames';
import { HeaderCompressor, HeaderDecompressor, decodeHeaderBlock, encodeHeaderBlock } from '../../src/streaming/spdy/header-codec';
import { ResizeDecoder } from '../../src/streaming/resize';
import { TokenCache } from '../../src/streaming/token-cache';

describe('SPDY/3 header compression', () => {
  it('uses the SPDY/3 dictionary (1423 bytes, Adler-32 e3c6a7c2)', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    // A zlib stream's header names its dictionary by Adler-32: deflate a byte and read bytes 2-5.
    const z = zlib.deflateSync(Buffer.from('x'), { dictionary: SPDY3_DICTIONARY });
    expect(z.subarray(2, 6).toString('hex')).toBe('e3c6a7c2');
  });

  it('inflates blocks another zlib compressed with the shared per-session context', async () => {
    const d = new HeaderDecompressor();
    expect(await d.decompress(Buffer.from('78f9e3c6a7c202a62346703a2b294a4dcc851625aca9a08006000000ffff', 'hex'))).toEqual({
      streamtype: ['error'],
    });
    expect(await d.decompress(Buffer.from('02651c0c2960624ec90797d1c022bb084c5b18581800000000ffff', 'hex'))).toEqual({
      streamtype: ['stdout'],
      port: ['8080'],
    });
  });

  it('round-trips blocks in order, multi-valued headers included', async () => {
    const c = new HeaderCompressor();
    const d = new HeaderDecompressor();
    const blocks = await Promise.all([c.compress({ streamtype: ['error'] }), c.compress({ a: ['1', '2'] }), c.compress({})]);
    expect(await d.decompress(blocks[0])).toEqual({ streamtype: ['error'] });
    expect(await d.decompress(blocks[1])).toEqual({ a: ['1', '2'] });
    expect(await d.decompress(blocks[2])).toEqual({});
  });

  it('lowercases names and refuses truncated blocks', () => {
    expect(decodeHeaderBlock(encodeHeaderBlock({ StreamType: ['stdin'] }))).toEqual({ streamtype: ['stdin'] });
    expect(() => decodeHeaderBlock(encodeHeaderBlock({ a: ['b'] }).subarray(0, 9))).toThrow(/truncated/);
  });
});

describe('SPDY frames', () => {
  it('parses frames split anywhere', () => {
    const wire = Buffer.concat([dataFrame(1, Buffer.from('hello'), true), rstStreamFrame(3, 5), windowUpdateFrame(0, 1000)]);
    const parser = new FrameParser();
    const frames = [...wire].flatMap((byte) => parser.push(Buffer.of(byte)));
    expect(frames).toEqual([
      { kind: 'data', streamId: 1, flags: 1, payload: Buffer.from('hello') },
      { kind: 'control', version: 3, type: 3, flags: 0, payload: Buffer.from('0000000300000005', 'hex') },
      { kind: 'control', version: 3, type: 9, flags: 0, payload: Buffer.from('00000000000003e8', 'hex') },
    ]);
  });
});

describe('resize messages', () => {
  it('decodes objects back to back and split across chunks, keys in any case', () => {
    const d = new ResizeDecoder();
    expect(d.push(Buffer.from('{"Width":80,"Height":24}{"width":1'))).toEqual([{ width: 80, height: 24 }]);
    expect(d.push(Buffer.from('00, "height": 50}\n'))).toEqual([{ width: 100, height: 50 }]);
  });

  it('stops at the first message it cannot decode, as the kubelet does', () => {
    const d = new ResizeDecoder();
    expect(d.push(Buffer.from('{"Width":-1}{"Width":3,"Height":4}'))).toEqual([]);
    expect(d.push(Buffer.from('{"Width":3,"Height":4}'))).toEqual([]);
  });
});

describe('token cache', () => {
  it('hands out single-use tokens that expire and caps how many are pending', () => {
    let now = 0;
    const cache = new TokenCache<string>(1000, 2, () => now);
    const a = cache.insert('a');
    const b = cache.insert('b');
    expect(() => cache.insert('c')).toThrow(/too many/);
    expect(cache.consume(a)).toBe('a');
    expect(cache.consume(a)).toBeUndefined();
    now = 1001;
    expect(cache.consume(b)).toBeUndefined();
    expect(cache.insert('d')).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});
