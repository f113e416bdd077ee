// systemd slice names and the cgroup paths they stand for (systemd.slice(5)): a dash is a level of
// the tree, so kubepods-burstable-pod1.slice lives at /kubepods.slice/kubepods-burstable.slice/...
import { InvalidArgumentError } from '../errors';

const SUFFIX = '.slice';

/** A slice name's cgroup path: "a-b.slice" -> "/a.slice/a-b.slice"; "-.slice" is the root. */
export function expandSlice(slice: string): string {
  if (!slice.endsWith(SUFFIX) || slice.includes('/')) throw new InvalidArgumentError(`${JSON.stringify(slice)} is not a systemd slice name (NAME.slice)`);
  const name = slice.slice(0, -SUFFIX.length);
  if (name === '-') return '/';
  if (!name || name.startsWith('-') || name.endsWith('-') || name.includes('--') || !/^[A-Za-z0-9:_.\\-]+$/.test(name)) {
    throw new InvalidArgumentError(`invalid systemd slice name ${JSON.stringify(slice)}`);
  }
  const parts = name.split('-');
  return parts.map((_, i) => `/${parts.slice(0, i + 1).join('-')}${SUFFIX}`).join('');
}

/**
 * The slice a pod's cgroup_parent names, as containerd and CRI-O read it with the systemd driver: the
 * kubelet sends either the slice ("kubepods-besteffort-pod1.slice") or its expanded path; the last
 * element is the slice.
 */
export function sliceOfParent(cgroupParent: string): string {
  const slice = cgroupParent.split('/').filter(Boolean).pop() ?? '';
  expandSlice(slice);
  return slice;
}
