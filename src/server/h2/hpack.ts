// A minimal HPACK (RFC 7541) decoder, and an encoder that only writes literals without indexing.
// Used by the authority rewriter to re-encode request header blocks; see authority-rewriter.ts.
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './hpack-huffman-table';

export type Header = [name: string, value: string];

/** RFC 7541 Appendix A. Index 1 is the first entry. */
const STATIC_TABLE: readonly Header[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

export class HpackError extends Error {}

/** Huffman codes keyed by (length << 32 | code) would overflow; a per-length map is just as quick. */
const HUFFMAN_BY_LENGTH: Map<number, number>[] = (() => {
  const maps: Map<number, number>[] = Array.from({ length: 31 }, () => new Map());
  HUFFMAN_LENGTHS.forEach((len, sym) => maps[len].set(HUFFMAN_CODES[sym], sym));
  return maps;
})();

export function huffmanDecode(input: Uint8Array): Buffer {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of input) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const sym = len >= 5 ? HUFFMAN_BY_LENGTH[len]?.get(code) : undefined;
      if (sym !== undefined) {
        if (sym === 256) throw new HpackError('Huffman string contains EOS');
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len > 30) {
        throw new HpackError('invalid Huffman code');
      }
    }
  }
  // Padding must be fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== 2 ** len - 1) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out);
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  peek(): number {
    if (this.done) throw new HpackError('header block truncated');
    return this.buf[this.pos];
  }

  /** An integer with an N-bit prefix (RFC 7541 section 5.1). */
  integer(prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = this.peek() & max;
    this.pos++;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      const byte = this.peek();
      this.pos++;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(byte & 0x80)) return value;
      if (shift > 28) throw new HpackError('integer too large');
    }
  }

  string(): string {
    const huffman = (this.peek() & 0x80) !== 0;
    const length = this.integer(7);
    if (this.pos + length > this.buf.length) throw new HpackError('string runs past the header block');
    const raw = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return (huffman ? huffmanDecode(raw) : raw).toString('latin1');
  }
}

const entrySize = ([name, value]: Header): number => Buffer.byteLength(name, 'latin1') + Buffer.byteLength(value, 'latin1') + 32;

/** Decodes header blocks of one direction of one connection, keeping its dynamic table. */
export class HpackDecoder {
  private dynamic: Header[] = [];
  private size = 0;

  constructor(private maxSize = 4096) {}

  private lookup(index: number): Header {
    if (index <= 0) throw new HpackError(`header index ${index} is invalid`);
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const entry = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!entry) throw new HpackError(`header index ${index} is not in the table`);
    return entry;
  }

  private evictTo(limit: number): void {
    while (this.size > limit && this.dynamic.length) this.size -= entrySize(this.dynamic.pop() as Header);
  }

  private insert(header: Header): void {
    const size = entrySize(header);
    this.evictTo(this.maxSize - size);
    if (size <= this.maxSize) {
      this.dynamic.unshift(header);
      this.size += size;
    }
  }

  decode(block: Buffer): Header[] {
    const r = new Reader(block);
    const headers: Header[] = [];
    while (!r.done) {
      const first = r.peek();
      if (first & 0x80) {
        headers.push(this.lookup(r.integer(7)));
      } else if (first & 0x40) {
        const index = r.integer(6);
        const header: Header = [index ? this.lookup(index)[0] : r.string(), r.string()];
        this.insert(header);
        headers.push(header);
      } else if (first & 0x20) {
        this.maxSize = r.integer(5);
        this.evictTo(this.maxSize);
      } else {
        // Literal without indexing (0000) or never indexed (0001): a 4-bit prefix either way.
        const index = r.integer(4);
        headers.push([index ? this.lookup(index)[0] : r.string(), r.string()]);
      }
    }
    return headers;
  }
}

function encodeInteger(value: number, prefixBits: number, flags: number, out: number[]): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

function encodeString(text: string, out: number[]): void {
  const bytes = Buffer.from(text, 'latin1');
  encodeInteger(bytes.length, 7, 0, out);
  for (const b of bytes) out.push(b);
}

/** Encodes headers as literals without indexing: the peer's dynamic table is never used. */
export function encodeLiterals(headers: readonly Header[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of headers) {
    out.push(0x00);
    encodeString(name, out);
    encodeString(value, out);
  }
  return Buffer.from(out);
}
