// A tar writer that writes entries exactly as given — hostile ones included (`..`, absolute paths,
// symlinks and hard links out of the tree), since the tests of berth's unpacker need them: no name is
// cleaned, no entry is reordered. ustar headers; PAX records for what ustar cannot hold (long names
// and link targets, uids/gids/sizes/mtimes out of range) and for xattrs; a `raw` entry for headers no
// well-behaved writer would produce. Deterministic: the same entries always give the same bytes.
import fs from 'node:fs';

/** Fields every entry may carry. Unset: uid/gid 0, empty uname/gname, mtime EPOCH, a mode per type. */
export interface TarCommon {
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Seconds since the epoch; a fraction or a value out of ustar's range goes into a PAX record. */
  mtime?: number;
  /** Extended attributes, as PAX `SCHILY.xattr.<name>` records. */
  xattrs?: Record<string, string>;
  /** Further PAX records, written as given after the ones this writer derives (so they win for readers). */
  pax?: Record<string, string>;
}

export type TarEntry =
  | (TarCommon & { type: 'file'; content: Buffer | string })
  | (TarCommon & { type: 'dir' })
  | (TarCommon & { type: 'symlink'; target: string })
  | (TarCommon & { type: 'hardlink'; target: string })
  | (TarCommon & { type: 'char' | 'block'; major: number; minor: number })
  | (TarCommon & { type: 'fifo' })
  /** An OCI whiteout of `path`: an empty file `<dir>/.wh.<name>`. */
  | (TarCommon & { type: 'whiteout' })
  /** An OCI opaque whiteout of the directory `path`: an empty file `<path>/.wh..wh..opq`. */
  | (TarCommon & { type: 'opaque' })
  /**
   * Any header at all: `typeflag` as given (e.g. 'x', 'g', 'L', 'S', '7', 'Z'), `size` may differ from the
   * content's length (a truncated or lying entry), the name is written as given and never moved into PAX.
   */
  | (TarCommon & { type: 'raw'; typeflag: string; linkname?: string; content?: Buffer | string; size?: number; major?: number; minor?: number });

export const TYPEFLAG = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' } as const;
/** A fixed time, so that building an image twice gives the same bytes (2023-11-14T22:13:20Z). */
export const EPOCH = 1_700_000_000;
export const BLOCK = 512;

const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

export interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname?: string;
  gname?: string;
  devmajor: number;
  devminor: number;
}

/** One 512-byte ustar header. Values that do not fit are truncated (callers put them in PAX first). */
export function header(fields: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(fields.name, 0, 100, 'utf8');
  h.write(octal(fields.mode, 8), 100, 8, 'ascii');
  h.write(octal(fields.uid, 8), 108, 8, 'ascii');
  h.write(octal(fields.gid, 8), 116, 8, 'ascii');
  h.write(octal(fields.size, 12), 124, 12, 'ascii');
  h.write(octal(fields.mtime, 12), 136, 12, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(fields.typeflag, 156, 1, 'latin1');
  h.write(fields.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(fields.uname ?? '', 265, 32, 'utf8');
  h.write(fields.gname ?? '', 297, 32, 'utf8');
  h.write(octal(fields.devmajor, 8), 329, 8, 'ascii');
  h.write(octal(fields.devminor, 8), 337, 8, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

export function padding(length: number): Buffer {
  const rest = length % BLOCK;
  return Buffer.alloc(rest ? BLOCK - rest : 0);
}

/** One PAX record, `<len> <key>=<value>\n`, where len counts the whole record including itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return `${len}${body}`;
}

/** The name an entry is written under: whiteouts and opaque markers become their `.wh.` files. */
export function entryName(e: TarEntry): string {
  if (e.type === 'whiteout') {
    const trimmed = e.path.replace(/\/+$/, '');
    const slash = trimmed.lastIndexOf('/');
    return `${trimmed.slice(0, slash + 1)}.wh.${trimmed.slice(slash + 1)}`;
  }
  if (e.type === 'opaque') {
    const dir = e.path.replace(/\/+$/, '');
    return dir ? `${dir}/.wh..wh..opq` : '.wh..wh..opq';
  }
  return e.path;
}

function defaultMode(e: TarEntry): number {
  if (e.type === 'dir') return 0o755;
  if (e.type === 'symlink') return 0o777;
  return 0o644;
}

const isInt = (n: number, max: number) => Number.isInteger(n) && n >= 0 && n <= max;

/** The header blocks (PAX header and its records if needed, then the ustar header) and data of one entry. */
export function* entryBlocks(e: TarEntry): Generator<Buffer> {
  const content = e.type === 'file' ? Buffer.from(e.content) : e.type === 'raw' && e.content !== undefined ? Buffer.from(e.content) : Buffer.alloc(0);
  const size = e.type === 'raw' && e.size !== undefined ? e.size : content.length;
  const name = entryName(e);
  const linkname = e.type === 'symlink' || e.type === 'hardlink' ? e.target : e.type === 'raw' ? (e.linkname ?? '') : '';
  const uid = e.uid ?? 0;
  const gid = e.gid ?? 0;
  const mtime = e.mtime ?? EPOCH;
  const major = e.type === 'char' || e.type === 'block' ? e.major : e.type === 'raw' ? (e.major ?? 0) : 0;
  const minor = e.type === 'char' || e.type === 'block' ? e.minor : e.type === 'raw' ? (e.minor ?? 0) : 0;

  const pax: string[] = [];
  if (e.type !== 'raw') {
    if (Buffer.byteLength(name) > 100) pax.push(paxRecord('path', name));
    if (Buffer.byteLength(linkname) > 100) pax.push(paxRecord('linkpath', linkname));
    if (!isInt(uid, MAX_OCTAL_8)) pax.push(paxRecord('uid', String(uid)));
    if (!isInt(gid, MAX_OCTAL_8)) pax.push(paxRecord('gid', String(gid)));
    if (!isInt(size, MAX_OCTAL_12)) pax.push(paxRecord('size', String(size)));
    if (!isInt(mtime, MAX_OCTAL_12)) pax.push(paxRecord('mtime', String(mtime)));
    if (e.uname !== undefined && Buffer.byteLength(e.uname) > 32) pax.push(paxRecord('uname', e.uname));
    if (e.gname !== undefined && Buffer.byteLength(e.gname) > 32) pax.push(paxRecord('gname', e.gname));
  }
  for (const [k, v] of Object.entries(e.xattrs ?? {})) pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
  for (const [k, v] of Object.entries(e.pax ?? {})) pax.push(paxRecord(k, v));
  if (pax.length) {
    const body = Buffer.from(pax.join(''));
    yield header({ name: 'PaxHeader', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: EPOCH, typeflag: 'x', linkname: '', devmajor: 0, devminor: 0 });
    yield body;
    yield padding(body.length);
  }
  // A value that went into a PAX record leaves 0 in its ustar field.
  const field = (n: number, max: number) => (isInt(n, max) ? n : 0);
  yield header({
    name: e.type === 'raw' ? name : name.slice(0, 100),
    mode: e.mode ?? defaultMode(e),
    uid: field(uid, MAX_OCTAL_8),
    gid: field(gid, MAX_OCTAL_8),
    size: field(size, MAX_OCTAL_12),
    mtime: field(mtime, MAX_OCTAL_12),
    typeflag: e.type === 'raw' ? e.typeflag : e.type === 'whiteout' || e.type === 'opaque' ? '0' : TYPEFLAG[e.type],
    linkname: e.type === 'raw' ? linkname : linkname.slice(0, 100),
    uname: e.uname,
    gname: e.gname,
    devmajor: major,
    devminor: minor,
  });
  if (content.length) {
    yield content;
    yield padding(content.length);
  }
}

/** The end of an archive: two zero blocks. */
export const END = Buffer.alloc(2 * BLOCK);

/** Every block of an archive, in order, for writers that stream. */
export function* tarBlocks(entries: Iterable<TarEntry>): Generator<Buffer> {
  for (const e of entries) yield* entryBlocks(e);
  yield END;
}

/** A tar archive of the entries, in memory. */
export function tar(entries: Iterable<TarEntry>): Buffer {
  return Buffer.concat([...tarBlocks(entries)]);
}

/** A tar archive of the entries written to a file, entry by entry; returns its size in bytes. */
export function writeTar(file: string, entries: Iterable<TarEntry>): number {
  const fd = fs.openSync(file, 'w', 0o644);
  let written = 0;
  try {
    for (const block of tarBlocks(entries)) {
      for (let off = 0; off < block.length; ) off += fs.writeSync(fd, block, off);
      written += block.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}
