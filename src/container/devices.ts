// The device nodes a container gets, resolved to their numbers: a privileged container's are the host's
// (as containerd and CRI-O give them), then the CRI's devices, then its CDI devices; a later one at the
// same path wins.
import fs from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../errors';
import type { CdiEdits } from './cdi';
import type { ContainerSpec } from './container';
import type { HostDevice } from './oci-spec';

/** Directories of /dev that are not the host's devices (or that the container gets its own of). */
const NOT_HOST_DEVICES = new Set(['pts', 'shm', 'mqueue', 'fd', 'hugepages', '.udev', '.lxc', '.lxd-mounts']);

/** The major and minor numbers of a device's st_rdev (glibc's gnu_dev_major/minor). */
function deviceNumbers(rdevNumber: number): { major: number; minor: number } {
  const rdev = BigInt(rdevNumber);
  return { major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)), minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)) };
}

/** The node at `file` (a symlink followed) as a device, or undefined when it is none. */
async function statDevice(file: string): Promise<Pick<HostDevice, 'type' | 'major' | 'minor' | 'fileMode'> & { uid: number; gid: number } | undefined> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st || !(st.isCharacterDevice() || st.isBlockDevice())) return undefined;
  return { type: st.isCharacterDevice() ? 'c' : 'b', ...deviceNumbers(st.rdev), fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/** Every character and block device under the host's /dev, as a privileged container sees them. */
async function privilegedDevices(dir = '/dev'): Promise<HostDevice[]> {
  const out: HostDevice[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!NOT_HOST_DEVICES.has(entry.name)) out.push(...(await privilegedDevices(file)));
      continue;
    }
    if (!entry.isCharacterDevice() && !entry.isBlockDevice()) continue;
    // /dev/console is the container's own terminal, or none.
    if (file === '/dev/console') continue;
    const dev = await statDevice(file);
    if (dev) out.push({ path: file, ...dev, permissions: 'rwm' });
  }
  return out;
}

/** Resolves the CRI's host devices to their numbers (a symlinked host path is followed). */
async function hostDevices(spec: ContainerSpec): Promise<HostDevice[]> {
  const out: HostDevice[] = [];
  for (const d of spec.devices) {
    const dev = await statDevice(d.hostPath);
    if (!dev) throw new InvalidArgumentError(`device ${JSON.stringify(d.hostPath)} is not a device on this host`);
    const permissions = d.permissions || 'rwm';
    if (!/^[rwm]+$/.test(permissions)) throw new InvalidArgumentError(`device ${d.hostPath}: permissions ${JSON.stringify(d.permissions)} are not of "rwm"`);
    // The node is root's in the container, whoever owns it on the host.
    out.push({ path: d.containerPath || d.hostPath, type: dev.type, major: dev.major, minor: dev.minor, fileMode: dev.fileMode, permissions });
  }
  return out;
}

/** CDI device nodes: their numbers as the spec gives them, else from the host's node (which must be a device). */
async function cdiDeviceNodes(cdi: CdiEdits): Promise<HostDevice[]> {
  const out: HostDevice[] = [];
  for (const n of cdi.deviceNodes) {
    const given = n.type !== undefined && n.major !== undefined && n.minor !== undefined;
    const dev = given ? undefined : await statDevice(n.hostPath);
    if (!given && !dev) throw new FailedPreconditionError(`CDI device node ${n.path}: ${n.hostPath} is not a device on this host`);
    out.push({
      path: n.path,
      type: n.type ?? (dev?.type as HostDevice['type']),
      major: dev?.major ?? (n.major as number),
      minor: dev?.minor ?? (n.minor as number),
      fileMode: n.fileMode ?? dev?.fileMode ?? 0o666,
      permissions: n.permissions,
      ...(n.uid !== undefined ? { uid: n.uid } : {}),
      ...(n.gid !== undefined ? { gid: n.gid } : {}),
    });
  }
  return out;
}

/** All the container's device nodes, one per path (the later source wins). */
export async function containerDevices(spec: ContainerSpec, cdi: CdiEdits): Promise<HostDevice[]> {
  const all = [...(spec.process.privileged ? await privilegedDevices() : []), ...(await hostDevices(spec)), ...(await cdiDeviceNodes(cdi))];
  return [...new Map(all.map((d) => [d.path, d])).values()];
}
