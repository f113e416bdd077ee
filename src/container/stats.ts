// Resource usage of containers and pods, read from their cgroups (v1 or v2) and network namespaces.
import fs from 'node:fs/promises';
import path from 'node:path';
import { cgroupLayout, controllerDir } from '../cgroups/layout';
import { runCommand } from '../util/spawn';

const NSENTER = '/usr/bin/nsenter';

export interface CpuStats {
  usageCoreNanoSeconds: bigint;
}

export interface MemoryStats {
  workingSetBytes: bigint;
  usageBytes: bigint;
  rssBytes: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
  availableBytes?: bigint;
}

export interface NetworkStats {
  name: string;
  rxBytes: bigint;
  rxErrors: bigint;
  txBytes: bigint;
  txErrors: bigint;
}

/** Pressure stall information of one resource (cgroup v2's <resource>.pressure): total in nanoseconds. */
export interface PsiLine {
  total: bigint;
  avg10: number;
  avg60: number;
  avg300: number;
}

export interface Pressure {
  some: PsiLine;
  full?: PsiLine;
}

export type PressureByResource = Partial<Record<'cpu' | 'memory' | 'io', Pressure>>;

const readText = (file: string | undefined): Promise<string> => (file ? fs.readFile(file, 'utf8').catch(() => '') : Promise.resolve(''));

function keyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v && /^\d+$/.test(v)) out.set(k, BigInt(v));
  }
  return out;
}

const file = (controller: string, cgroup: string, name: string): string | undefined => {
  const dir = controllerDir(controller, cgroup);
  return dir ? path.join(dir, name) : undefined;
};

export async function cpuStats(cgroup: string): Promise<CpuStats> {
  if (cgroupLayout().unified) {
    const usec = keyed(await readText(file('cpu', cgroup, 'cpu.stat'))).get('usage_usec') ?? 0n;
    return { usageCoreNanoSeconds: usec * 1000n };
  }
  const text = (await readText(file('cpuacct', cgroup, 'cpuacct.usage'))).trim();
  return { usageCoreNanoSeconds: /^\d+$/.test(text) ? BigInt(text) : 0n };
}

export async function memoryStats(cgroup: string): Promise<MemoryStats> {
  const v2 = cgroupLayout().unified !== undefined;
  const stat = keyed(await readText(file('memory', cgroup, 'memory.stat')));
  const usageText = (await readText(file('memory', cgroup, v2 ? 'memory.current' : 'memory.usage_in_bytes'))).trim();
  const limitText = (await readText(file('memory', cgroup, v2 ? 'memory.max' : 'memory.limit_in_bytes'))).trim();
  const usage = /^\d+$/.test(usageText) ? BigInt(usageText) : 0n;
  const inactiveFile = stat.get(v2 ? 'inactive_file' : 'total_inactive_file') ?? 0n;
  const workingSet = usage > inactiveFile ? usage - inactiveFile : 0n;
  const limit = /^\d+$/.test(limitText) ? BigInt(limitText) : undefined;
  // v1 reports "no limit" as a huge number rounded to the page size.
  const realLimit = limit !== undefined && limit < 1n << 62n ? limit : undefined;
  return {
    workingSetBytes: workingSet,
    usageBytes: usage,
    rssBytes: stat.get(v2 ? 'anon' : 'total_rss') ?? 0n,
    pageFaults: stat.get(v2 ? 'pgfault' : 'total_pgfault') ?? 0n,
    majorPageFaults: stat.get(v2 ? 'pgmajfault' : 'total_pgmajfault') ?? 0n,
    ...(realLimit !== undefined ? { availableBytes: realLimit > workingSet ? realLimit - workingSet : 0n } : {}),
  };
}

/** PIDs in the pod's cgroup and in its containers' (one level below). */
async function podPids(cgroup: string): Promise<string[]> {
  const dir = controllerDir('pids', cgroup);
  if (!dir) return [];
  const children = (await fs.readdir(dir, { withFileTypes: true }).catch(() => [])).filter((d) => d.isDirectory());
  const lists = await Promise.all([dir, ...children.map((d) => path.join(dir, d.name))].map((d) => readText(path.join(d, 'cgroup.procs'))));
  return lists.flatMap((text) => text.split('\n').filter((l) => /^\d+$/.test(l)));
}

/** A process of the pod that lives in the network namespace pinned at netns, if there is one. */
async function processInNetns(netns: string, cgroup: string): Promise<number | undefined> {
  const ns = await fs.stat(netns).catch(() => undefined);
  if (!ns) return undefined;
  for (const pid of await podPids(cgroup)) {
    const st = await fs.stat(`/proc/${pid}/ns/net`).catch(() => undefined);
    if (st && st.ino === ns.ino && st.dev === ns.dev) return Number(pid);
  }
  return undefined;
}

/** /proc/net/dev as seen inside the namespace: read through a process of the pod that lives in it
 * (one read), else with nsenter (two execs) for a pod with nothing running. */
async function netDevIn(netns: string, cgroup: string | undefined): Promise<string | undefined> {
  const pid = cgroup ? await processInNetns(netns, cgroup) : undefined;
  if (pid) {
    const text = await fs.readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => undefined);
    if (text) return text;
  }
  try {
    const end = await runCommand([NSENTER, `--net=${netns}`, 'cat', '/proc/self/net/dev'], { timeoutMs: 10_000 });
    return end.code === 0 ? end.stdout : undefined;
  } catch {
    return undefined;
  }
}

/** Interfaces of a network namespace (from /proc/net/dev as seen inside it), loopback left out. */
export async function networkStats(netns: string, cgroup?: string): Promise<NetworkStats[]> {
  const text = await netDevIn(netns, cgroup);
  if (!text) return [];
  const out: NetworkStats[] = [];
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2].trim().split(/\s+/).map((x) => BigInt(x));
    out.push({ name: m[1], rxBytes: f[0], rxErrors: f[2], txBytes: f[8], txErrors: f[10] });
  }
  return out;
}

/** Processes in a cgroup and its children (pids.current). */
export async function processCount(cgroup: string): Promise<number> {
  const text = (await readText(file('pids', cgroup, 'pids.current'))).trim();
  return /^\d+$/.test(text) ? Number(text) : 0;
}

/** Parses a .pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=12"; total in microseconds). */
export function parsePressure(text: string): Pressure | undefined {
  const lines: Partial<Record<'some' | 'full', PsiLine>> = {};
  for (const line of text.split('\n')) {
    const [kind, ...fields] = line.trim().split(' ');
    if (kind !== 'some' && kind !== 'full') continue;
    const f = new Map(fields.map((x) => x.split('=') as [string, string]));
    if (!/^\d+$/.test(f.get('total') ?? '')) continue;
    lines[kind] = { total: BigInt(f.get('total') as string) * 1000n, avg10: Number(f.get('avg10')), avg60: Number(f.get('avg60')), avg300: Number(f.get('avg300')) };
  }
  return lines.some ? { some: lines.some, ...(lines.full ? { full: lines.full } : {}) } : undefined;
}

/** PSI of a cgroup's cpu, memory and io, on cgroup v2 (v1 has none: an empty result). */
export async function pressureStats(cgroup: string): Promise<PressureByResource> {
  if (!cgroupLayout().unified) return {};
  const out: PressureByResource = {};
  await Promise.all(
    (['cpu', 'memory', 'io'] as const).map(async (resource) => {
      const p = parsePressure(await readText(file(resource, cgroup, `${resource}.pressure`)));
      if (p) out[resource] = p;
    }),
  );
  return out;
}
