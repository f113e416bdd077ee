// A container's root filesystem: overlayfs over its image's unpacked layers (read-only lower dirs)
// with the container's own upper and work dirs, mounted at the bundle's rootfs.
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, ResourceExhaustedError, messageOf } from '../errors';
import { isNativeError, MNT_DETACH, mount, umount2 } from '../native';
import { isNoSpace, makeDirs } from './disk';

/** mount(2) copies at most one page of options. */
const MAX_MOUNT_DATA = 4095;

export interface RootfsLayout {
  /** Persistent: the container's writable layer. */
  upper: string;
  work: string;
  /** Volatile: where the overlay is mounted (the bundle's rootfs). */
  target: string;
}

export function rootfsLayout(containerDir: string, bundleDir: string): RootfsLayout {
  return { upper: path.join(containerDir, 'fs', 'upper'), work: path.join(containerDir, 'fs', 'work'), target: path.join(bundleDir, 'rootfs') };
}

/** Mounts the overlay. `lowerDirs` are the image's layer trees, the base layer first. */
export async function mountRootfs(layout: RootfsLayout, lowerDirs: string[], emptyDir: string): Promise<void> {
  try {
    await makeDirs(layout.upper, 0o755);
    await makeDirs(layout.work, 0o700);
  } catch (err) {
    if (isNoSpace(err)) throw new ResourceExhaustedError(`no space left on device for the container's writable layer: ${(err as Error).message}`, { cause: err });
    throw err;
  }
  await fs.mkdir(layout.target, { recursive: true, mode: 0o755 });
  // overlayfs lists the topmost lower dir first; an image without layers stacks on an empty dir.
  const lower = lowerDirs.length ? [...lowerDirs].reverse() : [emptyDir];
  const data = `lowerdir=${lower.join(':')},upperdir=${layout.upper},workdir=${layout.work}`;
  if (data.length > MAX_MOUNT_DATA) {
    throw new ResourceExhaustedError(`the image has too many layers (${lowerDirs.length}) for one overlay mount of ${data.length} option bytes`);
  }
  try {
    mount('overlay', layout.target, 'overlay', 0, data);
  } catch (err) {
    if (isNoSpace(err)) throw new ResourceExhaustedError(`no space left on device for the container's writable layer: ${messageOf(err)}`, { cause: err });
    throw err;
  }
  // overlayfs that cannot make its work dir (work/work: a full disk) mounts read-only instead of failing;
  // the container would then fail obscurely (its runtime cannot even make /proc).
  if (await readOnlyFs(layout.target)) {
    umount2(layout.target, MNT_DETACH);
    const st = await fs.statfs(layout.upper).catch(() => undefined);
    if (st && (st.bavail === 0 || st.ffree === 0)) {
      throw new ResourceExhaustedError(`no space left on device for the container's writable layer: overlayfs could not make its work dir in ${layout.work} and mounted read-only`);
    }
    throw new FailedPreconditionError(`overlayfs mounted the container's rootfs read-only (the kernel log says why): the filesystem of ${layout.upper} cannot hold a writable layer`);
  }
}

/** Whether the filesystem at `dir` is read-only (access(2) answers EROFS for a write there). */
async function readOnlyFs(dir: string): Promise<boolean> {
  try {
    await fs.access(dir, fsConstants.W_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EROFS';
  }
}

/** Unmounts the overlay if it is mounted. */
export function unmountRootfs(layout: RootfsLayout): void {
  try {
    umount2(layout.target, MNT_DETACH);
  } catch (err) {
    if (!isNativeError(err, 'EINVAL') && !isNativeError(err, 'ENOENT')) throw err;
  }
}

/** Mount points at or below `dir`, from /proc/self/mountinfo (deepest first). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    // mountinfo escapes space, tab, newline and backslash as octal.
    const point = field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (point === dir || point.startsWith(prefix)) out.add(point);
  }
  return [...out].sort((a, b) => b.length - a.length);
}
