// Tar entries from the host's files: one file (e.g. /bin/busybox) or a whole directory tree.
// Deterministic by default: entries sorted by path, owned by root, stamped with EPOCH; the modes, link
// targets, hard links (by inode) and device numbers come from the host.
import fs from 'node:fs';
import path from 'node:path';
import { EPOCH, type TarCommon, type TarEntry } from './tar';

export interface HostOptions {
  /** Owner written for every entry: fixed ids (default root) or 'preserve' for the host's. */
  owner?: { uid: number; gid: number } | 'preserve';
  /** mtime written for every entry: a fixed time (default EPOCH) or 'preserve' for the host's (whole seconds). */
  mtime?: number | 'preserve';
}

/** Linux's device number encoding (glibc's gnu_dev_major/minor). */
export function major(rdev: number): number {
  const d = BigInt(rdev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}
export function minor(rdev: number): number {
  const d = BigInt(rdev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

function common(st: fs.Stats, opts: HostOptions): { uid: number; gid: number; mtime: number; mode: number } {
  const owner = opts.owner === 'preserve' ? { uid: st.uid, gid: st.gid } : (opts.owner ?? { uid: 0, gid: 0 });
  const mtime = opts.mtime === 'preserve' ? Math.floor(st.mtimeMs / 1000) : (opts.mtime ?? EPOCH);
  return { ...owner, mtime, mode: st.mode & 0o7777 };
}

/**
 * The entry for one host path (not followed if it is a symlink), written at `imagePath`. Overrides
 * (mode, uid, ...) apply on top. Sockets and other types tar cannot hold are refused.
 */
export function hostEntry(hostPath: string, imagePath: string, opts: HostOptions = {}, st: fs.Stats = fs.lstatSync(hostPath)): TarEntry {
  const c = { path: imagePath, ...common(st, opts) };
  if (st.isFile()) return { type: 'file', ...c, content: fs.readFileSync(hostPath) };
  if (st.isDirectory()) return { type: 'dir', ...c, path: imagePath.endsWith('/') ? imagePath : `${imagePath}/` };
  if (st.isSymbolicLink()) return { type: 'symlink', ...c, target: fs.readlinkSync(hostPath) };
  if (st.isCharacterDevice()) return { type: 'char', ...c, major: major(st.rdev), minor: minor(st.rdev) };
  if (st.isBlockDevice()) return { type: 'block', ...c, major: major(st.rdev), minor: minor(st.rdev) };
  if (st.isFIFO()) return { type: 'fifo', ...c };
  throw new Error(`${hostPath}: a socket or unknown file type cannot go into a layer`);
}

/** One host file at a path in the image, with optional overrides, e.g. hostFile('/bin/busybox', 'bin/busybox'). */
export function hostFile(hostPath: string, imagePath: string, overrides: Partial<Pick<TarCommon, 'mode' | 'uid' | 'gid' | 'mtime' | 'xattrs'>> = {}, opts: HostOptions = {}): TarEntry {
  return { ...hostEntry(hostPath, imagePath, opts), ...overrides };
}

/**
 * Every entry of a host directory tree, parents before children, siblings sorted by name, under
 * `prefix` in the image (default: the layer's root). The directory itself is not an entry unless a
 * prefix is given. A file with several links in the tree becomes one file and hard links to it;
 * sockets are skipped.
 */
export function hostTree(hostDir: string, opts: HostOptions & { prefix?: string } = {}): TarEntry[] {
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const entries: TarEntry[] = [];
  const seen = new Map<string, string>();
  if (prefix) entries.push(hostEntry(hostDir, `${prefix}/`, opts));
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const hostPath = path.join(dir, name);
      const imagePath = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(hostPath);
      if (st.isSocket()) continue;
      if (!st.isDirectory() && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = seen.get(key);
        if (first !== undefined) {
          entries.push({ type: 'hardlink', path: imagePath, target: first, ...common(st, opts) });
          continue;
        }
        seen.set(key, imagePath);
      }
      entries.push(hostEntry(hostPath, imagePath, opts, st));
      if (st.isDirectory()) walk(hostPath, imagePath);
    }
  };
  walk(hostDir, prefix);
  return entries;
}
