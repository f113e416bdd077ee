// Resource usage of containers and pods, from the files of their cgroups (v1 or v2) and network namespaces.
// Split in two so that the stats of hundreds of containers are one batch of reads: which files a cgroup's
// usage is read from (statFiles), and what the texts mean (parse*), which is pure.
import path from 'node:path';
import { cgroupLayout, controllerDir } from '../cgroups/layout';

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
  /** Swap in use, and left under the cgroup's swap limit; absent where the host does not account swap. */
  swapUsageBytes?: bigint;
  swapAvailableBytes?: bigint;
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

/** What one cgroup's files say. */
export interface CgroupUsage {
  cpu: CpuStats;
  memory: MemoryStats;
  pressure: PressureByResource;
  /** Processes in the cgroup and below it. */
  processes: number;
}

/** The files of a cgroup that its usage is read from, in the order parseCgroupUsage wants their texts
 * ('' for a file this host does not have: reading it fails, which parses as "nothing"). */
export function statFiles(cgroup: string): string[] {
  const v2 = cgroupLayout().unified !== undefined;
  const file = (controller: string, name: string): string => {
    const dir = controllerDir(controller, cgroup);
    return dir ? path.join(dir, name) : '';
  };
  return [
    v2 ? file('cpu', 'cpu.stat') : file('cpuacct', 'cpuacct.usage'),
    file('memory', 'memory.stat'),
    file('memory', v2 ? 'memory.current' : 'memory.usage_in_bytes'),
    file('memory', v2 ? 'memory.max' : 'memory.limit_in_bytes'),
    file('pids', 'pids.current'),
    v2 ? file('cpu', 'cpu.pressure') : '',
    v2 ? file('memory', 'memory.pressure') : '',
    v2 ? file('io', 'io.pressure') : '',
    // Swap: v2 counts it apart; v1 counts memory and swap together (memsw, with swap accounting on).
    file('memory', v2 ? 'memory.swap.current' : 'memory.memsw.usage_in_bytes'),
    file('memory', v2 ? 'memory.swap.max' : 'memory.memsw.limit_in_bytes'),
  ];
}

/** Number of files statFiles names per cgroup (parseCgroupUsage takes them in that order). */
export const STAT_FILES = 10;

/** The values of the wanted keys of a "key value" file (memory.stat, cpu.stat); others are not converted. */
function keyed(text: string | null, wanted: readonly string[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  if (!text) return out;
  for (const key of wanted) {
    const prefix = `${key} `;
    // Where the key's line starts: at the top, or after a newline (-1: not there).
    const at = text.startsWith(prefix) ? 0 : text.indexOf(`\n${prefix}`) + 1 || -1;
    if (at < 0) continue;
    const start = at + prefix.length;
    const end = text.indexOf('\n', start);
    const v = text.slice(start, end < 0 ? undefined : end);
    if (/^\d+$/.test(v)) out.set(key, BigInt(v));
  }
  return out;
}

const integer = (text: string | null): bigint | undefined => {
  const t = text?.trim();
  return t && /^\d+$/.test(t) ? BigInt(t) : undefined;
};

const V2_MEMORY_KEYS = ['inactive_file', 'anon', 'pgfault', 'pgmajfault'] as const;
const V1_MEMORY_KEYS = ['total_inactive_file', 'total_rss', 'total_pgfault', 'total_pgmajfault'] as const;

/** Swap from its two files (v1: memory and swap together, less the memory usage); undefined when not accounted. */
function parseSwap(usageText: string | null, limitText: string | null, memoryUsage: bigint, v2: boolean): Pick<MemoryStats, 'swapUsageBytes' | 'swapAvailableBytes'> {
  const total = integer(usageText);
  if (total === undefined) return {};
  const used = v2 ? total : total > memoryUsage ? total - memoryUsage : 0n;
  const limit = integer(limitText);
  const realLimit = limit !== undefined && limit < 1n << 62n ? (v2 ? limit : limit - memoryUsage) : undefined;
  return { swapUsageBytes: used, ...(realLimit !== undefined ? { swapAvailableBytes: realLimit > used ? realLimit - used : 0n } : {}) };
}

export function parseMemory(stat: string | null, usageText: string | null, limitText: string | null, v2: boolean, swapUsage: string | null = null, swapLimit: string | null = null): MemoryStats {
  const keys = v2 ? V2_MEMORY_KEYS : V1_MEMORY_KEYS;
  const values = keyed(stat, keys);
  const usage = integer(usageText) ?? 0n;
  const inactiveFile = values.get(keys[0]) ?? 0n;
  const workingSet = usage > inactiveFile ? usage - inactiveFile : 0n;
  const limit = integer(limitText);
  // v1 reports "no limit" as a huge number rounded to the page size (v2 as "max", which is no integer).
  const realLimit = limit !== undefined && limit < 1n << 62n ? limit : undefined;
  return {
    workingSetBytes: workingSet,
    usageBytes: usage,
    rssBytes: values.get(keys[1]) ?? 0n,
    pageFaults: values.get(keys[2]) ?? 0n,
    majorPageFaults: values.get(keys[3]) ?? 0n,
    ...(realLimit !== undefined ? { availableBytes: realLimit > workingSet ? realLimit - workingSet : 0n } : {}),
    ...parseSwap(swapUsage, swapLimit, usage, v2),
  };
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

/** A cgroup's usage from the texts of its statFiles (null: the file could not be read). */
export function parseCgroupUsage(texts: readonly (string | null)[]): CgroupUsage {
  const v2 = cgroupLayout().unified !== undefined;
  const [cpuText, memStat, memUsage, memLimit, pids, cpuPsi, memPsi, ioPsi, swapUsage, swapLimit] = texts;
  const psi = [cpuPsi, memPsi, ioPsi];
  const usageCoreNanoSeconds = v2 ? (keyed(cpuText, ['usage_usec']).get('usage_usec') ?? 0n) * 1000n : (integer(cpuText) ?? 0n);
  const pressure: PressureByResource = {};
  (['cpu', 'memory', 'io'] as const).forEach((resource, i) => {
    const p = psi[i] ? parsePressure(psi[i] as string) : undefined;
    if (p) pressure[resource] = p;
  });
  return { cpu: { usageCoreNanoSeconds }, memory: parseMemory(memStat, memUsage, memLimit, v2, swapUsage ?? null, swapLimit ?? null), pressure, processes: Number(integer(pids) ?? 0n) };
}

/** The file a network namespace's interface counters are read from, by a thread inside that namespace. */
export const NET_DEV_IN_NETNS = '/proc/thread-self/net/dev';

/** Interfaces of a network namespace from its /proc/net/dev text, loopback left out. */
export function parseNetDev(text: string | null): NetworkStats[] {
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
