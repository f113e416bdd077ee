// What is left after convergence, by category. With every pod removed, every category should be empty;
// anything there at the start of the run (the baseline) is not counted.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cgroupLayout } from '../../src/cgroups/layout';

export const CATEGORIES = ['mounts', 'netnsPins', 'veths', 'ips', 'cgroups', 'runtimeState', 'processes', 'cgroupProcesses', 'stateDirs', 'records', 'tmpFiles'] as const;
export type Category = (typeof CATEGORIES)[number];
export type Scan = Record<Category, string[]>;

export interface ScanTarget {
  /** berthd's base dir (root, state, socket under it). */
  dir: string;
  root: string;
  state: string;
  bridge: string;
  /** host-local's dir for the network: <ipam dataDir>/<network name>. */
  ipamDir: string;
  /** berthd's TMPDIR (CNI plugins' and nsenter's captured output goes there). */
  tmpDir: string;
  /** Every pod and container id made so far. */
  ids: ReadonlySet<string>;
}

const list = (dir: string): string[] => {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
};
const isDir = (p: string) => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
};

export const mountPoints = (prefix: string): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => !!mp && (mp === prefix || mp.startsWith(`${prefix}/`)));

function procs(): { pid: number; comm: string; state: string; cmdline: string }[] {
  const out = [];
  for (const p of list('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
      const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push({ pid: Number(p), comm, state, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Live berth-monitor and berth-init processes whose command line names the state dir. */
export function helperProcesses(state: string): { pid: number; comm: string; cmdline: string }[] {
  return procs().filter((p) => (p.comm === 'berth-monitor' || p.comm === 'berth-init') && p.state !== 'Z' && p.state !== 'X' && p.cmdline.includes(`${state}/`));
}

/** Live processes in a cgroup named by one of `ids` below /berth/ (the containers' own processes). */
export function cgroupProcesses(ids: ReadonlySet<string>): { pid: number; comm: string; cgroup: string }[] {
  const out = [];
  for (const p of procs()) {
    if (p.state === 'Z' || p.state === 'X') continue;
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${p.pid}/cgroup`, 'utf8');
    } catch {
      continue;
    }
    const m = /\/berth\/([0-9a-f]{64})(?:\/([0-9a-f]{64}))?/.exec(text);
    if (m && (ids.has(m[1]) || (m[2] && ids.has(m[2])))) out.push({ pid: p.pid, comm: p.comm, cgroup: m[0] });
  }
  return out;
}

/** Cgroup dirs below /berth/ named by our ids, in every hierarchy: relative path -> hierarchies. */
export function ourCgroups(ids: ReadonlySet<string>): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (rel: string, h: string) => found.set(rel, [...(found.get(rel) ?? []), h]);
  for (const h of cgroupLayout().all) {
    const base = path.join(h, 'berth');
    for (const e of list(base)) {
      const top = path.join(base, e);
      if (!ids.has(e) || !isDir(top)) continue;
      add(`/berth/${e}`, h);
      for (const c of list(top)) if (isDir(path.join(top, c)) && (ids.has(c) || /^[0-9a-f]{64}$/.test(c))) add(`/berth/${e}/${c}`, h);
    }
  }
  return found;
}

const readFirstLine = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8').split('\n')[0].trim();
  } catch {
    return '';
  }
};

export function scan(t: ScanTarget): Scan {
  let veths: string[] = [];
  try {
    veths = execFileSync('ip', ['-o', 'link', 'show', 'master', t.bridge], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':')[1].trim().split('@')[0]);
  } catch {
    // no bridge (yet)
  }
  const entries = (dir: string, keep: (name: string) => boolean = () => true) => list(dir).filter(keep).map((n) => path.join(dir, n));
  return {
    mounts: mountPoints(t.dir),
    netnsPins: ['net', 'uts', 'ipc', 'pid'].flatMap((k) => entries(path.join(t.state, 'ns', k))),
    veths,
    ips: list(t.ipamDir)
      .filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'))
      .map((f) => `${f} ${readFirstLine(path.join(t.ipamDir, f))}`),
    cgroups: [...ourCgroups(t.ids)].map(([rel, hs]) => `${rel} (${hs.length} hierarchies)`),
    runtimeState: list(path.join(t.state, 'runtime')).flatMap((h) => entries(path.join(t.state, 'runtime', h))),
    processes: helperProcesses(t.state).map((p) => `${p.pid} ${p.comm} ${p.cmdline.slice(0, 200)}`),
    cgroupProcesses: cgroupProcesses(t.ids).map((p) => `${p.pid} ${p.comm} ${p.cgroup}`),
    stateDirs: [
      ...entries(path.join(t.state, 'pods')),
      ...entries(path.join(t.state, 'containers')),
      ...entries(path.join(t.state, 'exits')),
      ...entries(path.join(t.state, 'console')),
      // `empty`: the shared empty lower dir berth keeps for every container (not a container's).
      ...entries(path.join(t.root, 'containers'), (n) => n !== 'empty' && isDir(path.join(t.root, 'containers', n))),
      ...entries(path.join(t.root, 'cni', 'results')),
    ],
    records: [
      ...entries(path.join(t.root, 'pods'), (n) => !isDir(path.join(t.root, 'pods', n))),
      ...entries(path.join(t.root, 'containers'), (n) => !isDir(path.join(t.root, 'containers', n))),
    ],
    tmpFiles: entries(t.tmpDir),
  };
}

export const emptyScan = (): Scan => Object.fromEntries(CATEGORIES.map((c) => [c, []])) as unknown as Scan;

/** `scan` minus what the baseline had. */
export function minus(a: Scan, baseline: Scan): Scan {
  return Object.fromEntries(CATEGORIES.map((c) => [c, a[c].filter((x) => !baseline[c].includes(x))])) as unknown as Scan;
}

export const total = (s: Scan) => CATEGORIES.reduce((n, c) => n + s[c].length, 0);

/** Scans until nothing is left or `settleMs` has passed (monitors take a moment to exit). */
export async function settledScan(t: ScanTarget, baseline: Scan, settleMs = 3000): Promise<Scan> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const s = minus(scan(t), baseline);
    if (total(s) === 0 || Date.now() >= deadline) return s;
    await new Promise((r) => setTimeout(r, 250));
  }
}
