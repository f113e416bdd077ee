// Reading files of a container's root filesystem from the host, as the image wrote them: symlinks are
// resolved inside the rootfs, never out of it, so a hostile image cannot make berthd read host files.
import fs from 'node:fs/promises';
import path from 'node:path';

const MAX_LINKS = 40;

/** Resolves `file` (absolute inside the container) to a host path under `root`. */
export async function resolveInRoot(root: string, file: string): Promise<string> {
  const pending = file.split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, part);
    const st = await fs.lstat(host).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new Error(`too many symlinks resolving ${file} in the container`);
      const target = await fs.readlink(host);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return path.join(root, ...done);
}

/** The file's text, or '' when the container has no such file. */
export async function readFileInRoot(root: string, file: string, maxBytes = 4 << 20): Promise<string> {
  const host = await resolveInRoot(root, file);
  try {
    const handle = await fs.open(host, 'r');
    try {
      const st = await handle.stat();
      if (!st.isFile()) return '';
      const buf = Buffer.alloc(Math.min(st.size, maxBytes));
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}
