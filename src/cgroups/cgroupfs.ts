// cgroupfs operations shared by both drivers: making a cgroup in every hierarchy, moving a process in,
// and the one destroyer used everywhere (kill what is inside, then remove children first).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCgroup } from '../native';
import { cgroupLayout, cgroupRoots } from './layout';

/** Creates the cgroup (and its missing ancestors) in every hierarchy. */
export function createCgroup(cgroup: string): Promise<void> {
  return makeCgroup(cgroupRoots(), cgroup);
}

const readProcs = (dir: string): Promise<number[]> =>
  fsp.readFile(path.join(dir, 'cgroup.procs'), 'utf8').then(
    (text) => text.split('\n').filter(Boolean).map(Number),
    () => [],
  );

/** The cgroup's directory and every cgroup below it, deepest first. */
async function subtree(dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  const below = await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => subtree(path.join(dir, e.name))));
  return [...below.flat(), dir];
}

/** SIGKILLs every process of the subtree: cgroup.kill where the kernel has it (v2), else one by one. */
async function killAll(dir: string): Promise<void> {
  if (fs.existsSync(path.join(dir, 'cgroup.kill'))) {
    await fsp.writeFile(path.join(dir, 'cgroup.kill'), '1');
    return;
  }
  for (const d of await subtree(dir)) {
    for (const pid of await readProcs(d)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  }
}

/** On v2, waits (up to ~5 s) until cgroup.events says the subtree has no process left. */
async function waitEmpty(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const events = await fsp.readFile(path.join(dir, 'cgroup.events'), 'utf8').catch(() => 'populated 0');
    if (/^populated 0$/m.test(events)) return;
    await sleep(50);
  }
}

/** rmdir that waits (up to ~5 s) for killed processes to leave: EBUSY is transient after a kill (v1). */
async function removeDir(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fsp.rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= 100) throw new Error(`removing cgroup ${dir}: ${(err as Error).message}`, { cause: err });
    }
    await sleep(50);
  }
}

/**
 * Removes the cgroup from every hierarchy a runtime may have made it in (name=systemd and a hybrid
 * host's unified one included): what is inside is killed first (with `kill`), then the cgroups below
 * it and itself, children first. A cgroup that is already gone is fine.
 */
export async function destroyCgroup(cgroup: string, opts: { kill: boolean }): Promise<void> {
  const { all, unified } = cgroupLayout();
  // The hierarchies are independent: each is emptied and removed at the same time as the others.
  await Promise.all(
    all.map(async (root) => {
      const dir = path.join(root, cgroup);
      if (!fs.existsSync(dir)) return;
      if (opts.kill) await killAll(dir);
      if (root === unified) await waitEmpty(dir);
      for (const d of await subtree(dir)) await removeDir(d);
    }),
  );
}
