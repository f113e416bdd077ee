// Pod cgroups with the cgroupfs driver, on cgroup v1 (one hierarchy per controller), v2 (the unified
// hierarchy), or hybrid hosts (v1 controllers with an empty v2 hierarchy beside them, as here).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../errors';

export interface CgroupLayout {
  /** v1 hierarchy mount points that carry controllers (cpu, memory, pids, ...), deduplicated. */
  v1: string[];
  /** The v2 mount point when the host is pure v2 (controllers live there). */
  unified?: string;
  /** v1 controller name (cpu, memory, ...) to the mount point of its hierarchy. */
  controllers: Record<string, string>;
}

let layout: CgroupLayout | undefined;

/** Reads the cgroup mounts once from /proc/self/mountinfo. */
export function cgroupLayout(): CgroupLayout {
  if (layout) return layout;
  const v1 = new Set<string>();
  const controllers: Record<string, string> = {};
  let v2: string | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const mountPoint = left.split(' ')[4];
    const [fstype, , options = ''] = right.split(' ');
    if (fstype === 'cgroup2') v2 = mountPoint;
    else if (fstype === 'cgroup' && !options.split(',').some((o) => o.startsWith('name='))) {
      v1.add(mountPoint);
      for (const o of options.split(',')) if (o !== 'rw' && o !== 'ro' && !controllers[o]) controllers[o] = mountPoint;
    }
  }
  layout = { v1: [...v1].sort(), controllers, ...(v1.size === 0 && v2 ? { unified: v2 } : {}) };
  return layout;
}

export function validateCgroupPath(cgroup: string): string {
  if (!cgroup.startsWith('/') || cgroup.split('/').includes('..') || /[\0\n]/.test(cgroup)) {
    throw new InvalidArgumentError(`cgroup parent ${JSON.stringify(cgroup)} must be an absolute cgroupfs path without ".."`);
  }
  return path.posix.normalize(cgroup);
}

/** cpuset cgroups on v1 start empty; a child needs its parent's cpus and mems before any task can join. */
async function inheritCpuset(dir: string): Promise<void> {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const own = (await fsp.readFile(path.join(dir, file), 'utf8')).trim();
    if (own) continue;
    const parent = (await fsp.readFile(path.join(path.dirname(dir), file), 'utf8')).trim();
    await fsp.writeFile(path.join(dir, file), parent);
  }
}

async function mkdirCgroup(root: string, cgroup: string): Promise<void> {
  let dir = root;
  for (const part of cgroup.split('/').filter(Boolean)) {
    dir = path.join(dir, part);
    await fsp.mkdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    if (fs.existsSync(path.join(dir, 'cpuset.cpus')) && !fs.existsSync(path.join(dir, 'cgroup.subtree_control'))) {
      await inheritCpuset(dir);
    }
  }
}

/** Creates the cgroup in every hierarchy; returns the directories made (for removal). */
export async function createCgroup(cgroup: string): Promise<string[]> {
  const { v1, unified } = cgroupLayout();
  const roots = unified ? [unified] : v1;
  for (const root of roots) await mkdirCgroup(root, cgroup);
  return roots.map((root) => path.join(root, cgroup));
}

/** Removes the cgroup from every hierarchy. A cgroup still holding tasks fails with EBUSY. */
export async function removeCgroup(cgroup: string): Promise<void> {
  const { v1, unified } = cgroupLayout();
  for (const root of unified ? [unified] : v1) {
    await fsp.rmdir(path.join(root, cgroup)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

/** Moves a process into the cgroup in every hierarchy. */
export async function joinCgroup(cgroup: string, pid: number): Promise<void> {
  const { v1, unified } = cgroupLayout();
  for (const root of unified ? [unified] : v1) await fsp.writeFile(path.join(root, cgroup, 'cgroup.procs'), String(pid));
}

/** The directory of a cgroup for one controller: its v1 hierarchy's, or the unified one on v2. */
export function controllerDir(controller: string, cgroup: string): string | undefined {
  const { unified, controllers } = cgroupLayout();
  const root = unified ?? controllers[controller];
  return root ? path.join(root, cgroup) : undefined;
}
