// CPU time of a runtime's own processes, from /proc: its daemon (with the helpers it has reaped, which the
// kernel adds to the daemon's cutime/cstime) and its per-container processes (monitors, shims, conmon), the
// same set the memory sampler uses. Containers' own processes are the workload, not the runtime.
import fs from 'node:fs';
import { readCmdline, readProcTable, runtimeProcesses } from '../proc';

export interface CpuTarget {
  daemonPid: number;
  socketPaths: string[];
  /** Source of the RegExp on the command name of per-container processes. */
  pattern: string;
  /** If set, a per-container process counts only if its command line contains this (berth's monitors
   * name their runtime's state directory: two berthds on one machine are told apart by it). */
  cmdlineContains?: string;
}

/** Clock ticks per process at one moment: utime + stime + cutime + cstime. */
export type CpuSnapshot = Map<number, number>;

/** Fields 14-17 of /proc/PID/stat (after the command name, which may hold spaces and parentheses). */
export function parseCpuTicks(statText: string): number | undefined {
  const close = statText.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = statText.slice(close + 2).split(' ');
  // f[0] is field 3 (state): utime is field 14 → f[11].
  const ticks = [11, 12, 13, 14].map((i) => Number(f[i]));
  return ticks.every(Number.isFinite) ? ticks.reduce((a, b) => a + b, 0) : undefined;
}

function ticksOf(pid: number): number | undefined {
  try {
    return parseCpuTicks(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function cpuSnapshot(target: CpuTarget): CpuSnapshot {
  const table = readProcTable();
  const rule = { pattern: new RegExp(target.pattern), socketPaths: target.socketPaths };
  const owned = (pid: number) => target.cmdlineContains === undefined || (readCmdline(pid) ?? []).some((a) => a.includes(target.cmdlineContains as string));
  const pids = [target.daemonPid, ...runtimeProcesses(table, target.daemonPid, rule, (pid) => readCmdline(pid)).filter(owned)];
  const snap: CpuSnapshot = new Map();
  for (const pid of pids) {
    const t = ticksOf(pid);
    if (t !== undefined) snap.set(pid, t);
  }
  return snap;
}

/** Ticks spent between two snapshots: a process that appeared in between counts from zero. (One that came
 * and went in between is lost unless a process of the set reaped it, which is how helpers are counted.) */
export function ticksBetween(before: CpuSnapshot, after: CpuSnapshot): number {
  let sum = 0;
  for (const [pid, t] of after) sum += Math.max(0, t - (before.get(pid) ?? 0));
  return sum;
}

/** Ticks per second of this kernel (USER_HZ): 100 on every Linux of interest. */
export const USER_HZ = 100;

/** CPU use in percent of one core over a wall time in seconds. */
export const cpuPercent = (ticks: number, seconds: number): number => (ticks / USER_HZ / seconds) * 100;
