// A container's root filesystem: overlayfs over its image's unpacked layers (read-only lower dirs)
// with the container's own upper and work dirs, mounted at the bundle's rootfs.
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, ResourceExhaustedError, messageOf } from '../errors';
import { idmapMount, isNativeError, MNT_DETACH, MS_RDONLY, mount, umount2 } from '../native';
import { failpoint } from '../state/failpoints';
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

/**
 * A container in a user namespace sees its image's files through idmapped lower layers: an image file of
 * uid 0 is the pod's root (the host id that container id 0 maps to), as overlayfs (Linux 5.19) allows. The
 * overlay itself cannot be idmapped, nor its upper dir (overlayfs makes its work dir with the mounter's
 * ids, which such a mount does not map), so the writable layer holds host ids: its root belongs to the
 * pod's root.
 */
export interface RootfsIdmap {
  /** The pod's pinned user namespace. */
  usernsPath: string;
  /** The host ids of container id 0. */
  uid: number;
  gid: number;
}

/** Where the idmapped copies of the rootfs's lower layers are attached while the overlay is mounted. */
const idmappedDir = (layout: RootfsLayout) => path.join(path.dirname(layout.target), 'idmapped');

/**
 * Mounts an overlay of `layers` (topmost first) at `target`: with `upper` writable, else read-only. With
 * `idmap`, over read-only idmapped copies of the layers attached under `idmapDir` for the mount's length.
 */
async function mountOverlay(target: string, layers: string[], opts: { upper?: { upper: string; work: string }; idmap?: RootfsIdmap; idmapDir: string }): Promise<void> {
  const lower = opts.idmap ? await idmapLayers(opts.idmapDir, layers, opts.idmap) : layers;
  try {
    const data = `lowerdir=${lower.join(':')}${opts.upper ? `,upperdir=${opts.upper.upper},workdir=${opts.upper.work}` : ''}`;
    if (data.length > MAX_MOUNT_DATA) {
      throw new ResourceExhaustedError(`the image has too many layers (${layers.length}) for one overlay mount of ${data.length} option bytes`);
    }
    if (opts.idmap && opts.upper) await fs.chown(opts.upper.upper, opts.idmap.uid, opts.idmap.gid);
    mount('overlay', target, 'overlay', opts.upper ? 0 : MS_RDONLY, data);
  } finally {
    // overlayfs keeps its own private copy of each lower layer's mount: the attached ones can go at once.
    if (opts.idmap) await unmountEach(opts.idmapDir);
  }
}

/** Mounts the overlay. `lowerDirs` are the image's layer trees, the base layer first. */
export async function mountRootfs(layout: RootfsLayout, lowerDirs: string[], emptyDir: string, idmap?: RootfsIdmap): Promise<void> {
  try {
    await makeDirs(layout.upper, 0o755);
    await makeDirs(layout.work, 0o700);
  } catch (err) {
    if (isNoSpace(err)) throw new ResourceExhaustedError(`no space left on device for the container's writable layer: ${(err as Error).message}`, { cause: err });
    throw err;
  }
  await fs.mkdir(layout.target, { recursive: true, mode: 0o755 });
  // overlayfs lists the topmost lower dir first; an image without layers stacks on an empty dir.
  const layers = lowerDirs.length ? [...lowerDirs].reverse() : [emptyDir];
  try {
    await mountOverlay(layout.target, layers, { upper: layout, idmap, idmapDir: idmappedDir(layout) });
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

/** Read-only idmapped copies of the layers, attached under `dir` (named by position, top first). */
async function idmapLayers(dir: string, layers: string[], idmap: RootfsIdmap): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const out: string[] = [];
  try {
    for (const [i, layer] of layers.entries()) {
      const target = path.join(dir, String(i));
      await fs.mkdir(target, { mode: 0o700 });
      idmapMount(layer, target, idmap.usernsPath);
      out.push(target);
    }
    failpoint('container.after-idmap');
  } catch (err) {
    await unmountEach(dir);
    if (isNativeError(err, 'EINVAL')) throw new FailedPreconditionError(`the image's layers cannot be idmapped on this host (the kernel or the filesystem of ${layers[0]} refuses): ${messageOf(err)}`, { cause: err });
    throw err;
  }
  return out;
}

/**
 * Detaches and removes every mount point directly in `dir`, then `dir`: nothing there is ever written
 * through (idmapped copies and image volumes are read-only), and this runs before anything removes a
 * bundle recursively, also after a crash between a mount and its use.
 */
async function unmountEach(dir: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    try {
      umount2(path.join(dir, name), MNT_DETACH);
    } catch (err) {
      if (!isNativeError(err, 'EINVAL') && !isNativeError(err, 'ENOENT')) throw err;
    }
    await fs.rmdir(path.join(dir, name));
  }
  await fs.rmdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** The rootfs's idmapped layer copies, if a crash left them. */
export const unmountIdmappedLayers = (layout: RootfsLayout): Promise<void> => unmountEach(idmappedDir(layout));

/**
 * Image volumes (the CRI's Mount.image): each image's layers as a read-only overlay at
 * `<bundle>/image-volumes/<n>`, bound into the container by the runtime like any host path. An image of one
 * layer stacks on the empty dir (a lower-only overlay needs two). In a pod with its own user namespace the
 * layers are idmapped as the rootfs's are, their copies under `<bundle>/image-volumes-idmapped/<n>`.
 */
export const imageVolumeDir = (bundleDir: string, n: number): string => path.join(bundleDir, 'image-volumes', String(n));

export async function mountImageVolume(bundleDir: string, n: number, lowerDirs: string[], emptyDir: string, idmap?: RootfsIdmap): Promise<string> {
  const target = imageVolumeDir(bundleDir, n);
  await fs.mkdir(target, { recursive: true, mode: 0o755 });
  const layers = [...lowerDirs].reverse();
  if (layers.length < 2) layers.push(emptyDir);
  await mountOverlay(target, layers, { idmap, idmapDir: path.join(bundleDir, 'image-volumes-idmapped', String(n)) });
  return target;
}

export async function unmountImageVolumes(bundleDir: string): Promise<void> {
  const idmapped = path.join(bundleDir, 'image-volumes-idmapped');
  for (const name of await fs.readdir(idmapped).catch(() => [] as string[])) await unmountEach(path.join(idmapped, name));
  await unmountEach(idmapped);
  await unmountEach(path.join(bundleDir, 'image-volumes'));
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
