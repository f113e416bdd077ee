// Where the cgroup hierarchies are: v1 (one hierarchy per controller), v2 (the unified hierarchy), or
// hybrid (v1 controllers with a v2 hierarchy beside them, as on berth's development host). Read once.
import fs from 'node:fs';
import path from 'node:path';

export interface CgroupLayout {
  /** v1 hierarchy mount points that carry controllers (cpu, memory, pids, ...), deduplicated. */
  v1: string[];
  /** The v2 mount point when the host is pure v2 (controllers live there). */
  unified?: string;
  /** v1 controller name (cpu, memory, ...) to the mount point of its hierarchy. */
  controllers: Record<string, string>;
  /**
   * Every hierarchy a runtime may create a cgroup in: the controller ones, named v1 ones (name=systemd)
   * and a hybrid host's unified one. runc and berth-runtime make a container's cgroup (and so its
   * parents) in all of them; teardown removes from all of them.
   */
  all: string[];
}

let layout: CgroupLayout | undefined;

/** Reads the cgroup mounts once from /proc/self/mountinfo. */
export function cgroupLayout(): CgroupLayout {
  if (layout) return layout;
  const v1 = new Set<string>();
  const all = new Set<string>();
  const controllers: Record<string, string> = {};
  let v2: string | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const [, , , root, mountPoint] = left.split(' ');
    const [fstype, , options = ''] = right.split(' ');
    if ((fstype === 'cgroup' || fstype === 'cgroup2') && root === '/') all.add(mountPoint);
    if (fstype === 'cgroup2') v2 = mountPoint;
    else if (fstype === 'cgroup' && !options.split(',').some((o) => o.startsWith('name='))) {
      v1.add(mountPoint);
      for (const o of options.split(',')) if (o !== 'rw' && o !== 'ro' && !controllers[o]) controllers[o] = mountPoint;
    }
  }
  layout = { v1: [...v1].sort(), controllers, all: [...all].sort(), ...(v1.size === 0 && v2 ? { unified: v2 } : {}) };
  return layout;
}

/** The hierarchies a cgroup is made in: the unified one on v2, every v1 controller hierarchy otherwise. */
export function cgroupRoots(): string[] {
  const { v1, unified } = cgroupLayout();
  return unified ? [unified] : v1;
}

/** The directory of a cgroup for one controller: its v1 hierarchy's, or the unified one on v2. */
export function controllerDir(controller: string, cgroup: string): string | undefined {
  const { unified, controllers } = cgroupLayout();
  const root = unified ? unified : controllers[controller];
  return root ? path.join(root, cgroup) : undefined;
}

/** The controllers this host offers to berth's cgroups: the unified root's, or the v1 hierarchies'. */
export function availableControllers(): Set<string> {
  const { unified, controllers } = cgroupLayout();
  if (!unified) return new Set(Object.keys(controllers));
  const text = fs.readFileSync(path.join(unified, 'cgroup.controllers'), 'utf8');
  return new Set(text.split(/\s+/).filter(Boolean));
}

/** The resources a container asks for, as far as they decide which controllers it needs. */
export interface ResourceRequest {
  cpusetCpus?: string;
  cpusetMems?: string;
  hugepages?: ReadonlyArray<unknown>;
  unified?: Record<string, string>;
}

/**
 * The controllers a container needs: cpu, memory and pids always (the kubelet's limits and stats), and
 * cpuset, hugetlb or the controller of each `unified` key when the request uses them.
 */
export function neededControllers(r: ResourceRequest): string[] {
  const needed = new Set(['cpu', 'memory', 'pids']);
  if (r.cpusetCpus || r.cpusetMems) needed.add('cpuset');
  if (r.hugepages?.length) needed.add('hugetlb');
  for (const key of Object.keys(r.unified ?? {})) {
    const controller = key.split('.')[0];
    if (controller !== 'cgroup') needed.add(controller);
  }
  return [...needed];
}

/** The needed controllers this host does not offer (a request for them is refused, never half-applied). */
export function missingControllers(r: ResourceRequest): string[] {
  const available = availableControllers();
  return neededControllers(r).filter((c) => !available.has(c));
}
