// A small tar reader for tests: reads back what tar.ts wrote (or any ustar/PAX/GNU archive) without
// interpreting or cleaning names, so a test can check that an entry went out exactly as given.
import { BLOCK } from './tar';

export interface ReadTarEntry {
  /** The name after PAX `path` / GNU long-name records, exactly as stored (no cleaning). */
  path: string;
  /** The name in the ustar header itself (prefix/name joined). */
  headerName: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** The PAX records that applied to this entry (global ones included). */
  pax: Record<string, string>;
  xattrs: Record<string, string>;
  content: Buffer;
  /** Byte offset of this entry's own (ustar) header in the archive. */
  offset: number;
}

function cstring(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

function numeric(b: Buffer): number {
  if (b[0] & 0x80) {
    // base-256: big-endian, the top bit of the first byte is the marker
    let n = b[0] & 0x7f;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i];
    return n;
  }
  const s = cstring(b).trim();
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum === numeric(h.subarray(148, 156));
}

export function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < body.length) {
    const space = body.indexOf(0x20, off);
    if (space < 0) break;
    const len = parseInt(body.subarray(off, space).toString('ascii'), 10);
    if (!(len > 0)) throw new Error(`bad PAX record at ${off}`);
    const record = body.subarray(space + 1, off + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    out[record.slice(0, eq)] = record.slice(eq + 1);
    off += len;
  }
  return out;
}

/** Every entry of an uncompressed tar archive; throws on a bad checksum or a truncated archive. */
export function readTar(archive: Buffer): ReadTarEntry[] {
  const entries: ReadTarEntry[] = [];
  let global: Record<string, string> = {};
  let local: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let off = 0;
  while (off + BLOCK <= archive.length) {
    const h = archive.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    if (!checksumOk(h)) throw new Error(`bad header checksum at offset ${off}`);
    const typeflag = String.fromCharCode(h[156]) === '\0' ? '0' : String.fromCharCode(h[156]);
    let size = numeric(h.subarray(124, 136));
    const pax = { ...global, ...local };
    if (pax.size !== undefined && typeflag !== 'x' && typeflag !== 'g') size = Number(pax.size);
    const dataStart = off + BLOCK;
    if (dataStart + size > archive.length) throw new Error(`entry at offset ${off} is truncated`);
    const data = archive.subarray(dataStart, dataStart + size);
    const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === 'x') {
      local = { ...local, ...parsePax(data) };
    } else if (typeflag === 'g') {
      global = { ...global, ...parsePax(data) };
    } else if (typeflag === 'L') {
      longName = cstring(data);
    } else if (typeflag === 'K') {
      longLink = cstring(data);
    } else {
      const magic = h.subarray(257, 263).toString('latin1');
      const prefix = magic.startsWith('ustar') ? cstring(h.subarray(345, 500)) : '';
      const name = cstring(h.subarray(0, 100));
      const headerName = prefix ? `${prefix}/${name}` : name;
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v;
      entries.push({
        path: pax.path ?? longName ?? headerName,
        headerName,
        typeflag,
        mode: numeric(h.subarray(100, 108)),
        uid: pax.uid !== undefined ? Number(pax.uid) : numeric(h.subarray(108, 116)),
        gid: pax.gid !== undefined ? Number(pax.gid) : numeric(h.subarray(116, 124)),
        uname: pax.uname ?? cstring(h.subarray(265, 297)),
        gname: pax.gname ?? cstring(h.subarray(297, 329)),
        size,
        mtime: pax.mtime !== undefined ? Number(pax.mtime) : numeric(h.subarray(136, 148)),
        linkname: pax.linkpath ?? longLink ?? cstring(h.subarray(157, 257)),
        devmajor: numeric(h.subarray(329, 337)),
        devminor: numeric(h.subarray(337, 345)),
        pax,
        xattrs,
        content: Buffer.from(data),
        offset: off,
      });
      local = {};
      longName = undefined;
      longLink = undefined;
    }
    off = next;
  }
  return entries;
}
