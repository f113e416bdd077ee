// A streaming tar reader written for hostile input: it reports names exactly as the archive gives
// them (the unpacker decides what is allowed), verifies header checksums, and understands ustar,
// GNU long names and links, PAX extended headers (path, linkpath, size, ids, mtime, SCHILY.xattr.*),
// and base-256 numbers. File contents are streamed, never held whole.
import { InvalidArgumentError } from '../../errors';
import { ByteReader } from './byte-reader';

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'other';

export interface TarHeader {
  path: string;
  type: EntryType;
  /** The raw typeflag, for messages about entries berth does not unpack. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, with a fraction when PAX gives one. */
  mtime: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, Buffer>;
}

export class TarFormatError extends Error {}

const BLOCK = 512;
const TYPES: Record<string, EntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };

function text(h: Buffer, offset: number, length: number): string {
  const field = h.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? length : nul).toString('utf8');
}

function number(h: Buffer, offset: number, length: number, what: string): number {
  const field = h.subarray(offset, offset + length);
  if (field[0] & 0x80) {
    // base-256: big-endian two's complement with the top bit as marker
    let value = 0;
    for (let i = 0; i < field.length; i++) value = value * 256 + (i === 0 ? field[i] & 0x7f : field[i]);
    if (!Number.isSafeInteger(value)) throw new TarFormatError(`tar header ${what} is too large`);
    return value;
  }
  const s = field.toString('ascii').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`tar header ${what} is not an octal number: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = number(h, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) throw new TarFormatError('malformed PAX record');
    const record = data.subarray(space + 1, pos + len - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw new TarFormatError('malformed PAX record: no "="');
    out.set(record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/** Extended data is read into memory: it must stay small. */
const MAX_META_BYTES = 1024 * 1024;

export class TarReader {
  private readonly reader: ByteReader;
  private pendingBody = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.reader = new ByteReader(source[Symbol.asyncIterator]());
  }

  private async readMeta(size: number, what: string): Promise<Buffer> {
    if (size > MAX_META_BYTES) throw new TarFormatError(`${what} of ${size} bytes is too large`);
    const data = (await this.reader.read(size + padding(size))) ?? Buffer.alloc(0);
    if (data.length < size) throw new TarFormatError(`archive ends inside ${what}`);
    return data.subarray(0, size);
  }

  /** The next entry's header, or null at the end of the archive. Skips an unread body first. */
  async next(): Promise<TarHeader | null> {
    if (this.pendingBody) await this.skipBody();
    let pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const h = await this.reader.read(BLOCK);
      if (h === null) return null;
      if (h.every((b) => b === 0)) return null;
      if (!checksumOk(h)) throw new TarFormatError('tar header checksum mismatch (corrupt or not a tar archive)');
      const typeflag = String.fromCharCode(h[156]);
      const size = number(h, 124, 12, 'size');
      if (typeflag === 'x') {
        pax = new Map([...pax, ...parsePax(await this.readMeta(size, 'PAX header'))]);
        continue;
      }
      if (typeflag === 'g') {
        await this.readMeta(size, 'PAX global header');
        continue;
      }
      if (typeflag === 'L' || typeflag === 'K') {
        const value = (await this.readMeta(size, 'GNU long name')).toString('utf8').replace(/\0.*$/s, '');
        if (typeflag === 'L') longName = value;
        else longLink = value;
        continue;
      }
      const magic = h.subarray(257, 263).toString('ascii');
      const prefix = magic.startsWith('ustar') ? text(h, 345, 155) : '';
      let path = text(h, 0, 100);
      if (prefix) path = `${prefix}/${path}`;
      const xattrs: Record<string, Buffer> = {};
      for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v;
      const paxNumber = (key: string, fallback: number): number => {
        const v = pax.get(key);
        if (!v) return fallback;
        const n = Number(v.toString('ascii'));
        if (!Number.isFinite(n) || n < 0) throw new TarFormatError(`PAX ${key} is not a number`);
        return n;
      };
      const header: TarHeader = {
        path: pax.get('path')?.toString('utf8') ?? longName ?? path,
        type: TYPES[typeflag] ?? 'other',
        typeflag,
        mode: number(h, 100, 8, 'mode') & 0o7777,
        uid: paxNumber('uid', number(h, 108, 8, 'uid')),
        gid: paxNumber('gid', number(h, 116, 8, 'gid')),
        size: paxNumber('size', size),
        mtime: paxNumber('mtime', number(h, 136, 12, 'mtime')),
        linkpath: pax.get('linkpath')?.toString('utf8') ?? longLink ?? text(h, 157, 100),
        devmajor: number(h, 329, 8, 'devmajor'),
        devminor: number(h, 337, 8, 'devminor'),
        xattrs,
      };
      if (!Number.isSafeInteger(header.size)) throw new TarFormatError('entry size is not an integer');
      // Only regular files carry data; a size on anything else is skipped, never written.
      this.pendingBody = header.size;
      return header;
    }
  }

  /** Streams the current entry's data to sink. */
  async readBody(sink: (chunk: Buffer) => Promise<void> | void): Promise<void> {
    const size = this.pendingBody;
    this.pendingBody = 0;
    await this.reader.stream(size, sink);
    await this.reader.skip(padding(size));
  }

  /** Reads past the end-of-archive blocks to the end of the stream (whose hash covers it all). */
  async drain(): Promise<void> {
    await this.reader.drain();
  }

  private async skipBody(): Promise<void> {
    const size = this.pendingBody;
    this.pendingBody = 0;
    await this.reader.skip(size + padding(size));
  }
}

/** An entry's path as components, or an error naming it: never absolute, never `..`. */
export function cleanEntryPath(name: string): string[] {
  if (name.includes('\0')) throw new InvalidArgumentError(`archive entry ${JSON.stringify(name)} contains a NUL byte`);
  if (name.startsWith('/')) throw new InvalidArgumentError(`archive entry ${JSON.stringify(name)} is an absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new InvalidArgumentError(`archive entry ${JSON.stringify(name)} contains ".."`);
  return parts;
}
