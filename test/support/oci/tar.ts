// A tar writer that writes entries exactly as given — hostile ones included (`..`, absolute paths,
// symlinks out), since the tests of berth's unpacker need them. ustar headers, PAX for long names,
// large sizes and xattrs.

export type TarEntry =
  | { type: 'file'; path: string; content: Buffer | string; mode?: number; uid?: number; gid?: number; mtime?: number; xattrs?: Record<string, string> }
  | { type: 'dir'; path: string; mode?: number; uid?: number; gid?: number; mtime?: number; xattrs?: Record<string, string> }
  | { type: 'symlink'; path: string; target: string; uid?: number; gid?: number; mtime?: number }
  | { type: 'hardlink'; path: string; target: string; mtime?: number }
  | { type: 'char' | 'block'; path: string; major: number; minor: number; mode?: number; mtime?: number }
  | { type: 'fifo'; path: string; mode?: number; mtime?: number };

const TYPEFLAG = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' } as const;
/** A fixed time, so that building an image twice gives the same bytes. */
export const EPOCH = 1_700_000_000;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(fields: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const h = Buffer.alloc(512);
  h.write(fields.name, 0, 100, 'utf8');
  h.write(octal(fields.mode, 8), 100, 'ascii');
  h.write(octal(fields.uid, 8), 108, 'ascii');
  h.write(octal(fields.gid, 8), 116, 'ascii');
  h.write(octal(fields.size, 12), 124, 'ascii');
  h.write(octal(fields.mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(fields.typeflag, 156, 'ascii');
  h.write(fields.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(octal(fields.devmajor, 8), 329, 'ascii');
  h.write(octal(fields.devminor, 8), 337, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

function pad(data: Buffer): Buffer {
  const rest = data.length % 512;
  return rest ? Buffer.concat([data, Buffer.alloc(512 - rest)]) : data;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

export function tar(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const content = e.type === 'file' ? Buffer.from(e.content) : Buffer.alloc(0);
    const linkname = e.type === 'symlink' || e.type === 'hardlink' ? e.target : '';
    const pax: string[] = [];
    if (Buffer.byteLength(e.path) > 100) pax.push(paxRecord('path', e.path));
    if (Buffer.byteLength(linkname) > 100) pax.push(paxRecord('linkpath', linkname));
    if ((e.type === 'file' || e.type === 'dir') && e.xattrs) {
      for (const [k, v] of Object.entries(e.xattrs)) pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
    }
    if (pax.length) {
      const body = Buffer.from(pax.join(''));
      blocks.push(
        header({ name: 'PaxHeader', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: EPOCH, typeflag: 'x', linkname: '', devmajor: 0, devminor: 0 }),
        pad(body),
      );
    }
    const defaultMode = e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644;
    blocks.push(
      header({
        name: e.path.slice(0, 100),
        mode: 'mode' in e && e.mode !== undefined ? e.mode : defaultMode,
        uid: 'uid' in e && e.uid !== undefined ? e.uid : 0,
        gid: 'gid' in e && e.gid !== undefined ? e.gid : 0,
        size: content.length,
        mtime: e.mtime ?? EPOCH,
        typeflag: TYPEFLAG[e.type],
        linkname: linkname.slice(0, 100),
        devmajor: e.type === 'char' || e.type === 'block' ? e.major : 0,
        devminor: e.type === 'char' || e.type === 'block' ? e.minor : 0,
      }),
    );
    if (content.length) blocks.push(pad(content));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
