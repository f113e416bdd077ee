// Identifying long-lived processes across berthd restarts: a PID with its start time, so that a
// reused PID is never mistaken for the process berth started.
import fs from 'node:fs/promises';

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot when it started. */
  startTime: string;
}

interface ProcStat {
  comm: string;
  state: string;
  startTime: string;
}

async function stat(pid: number): Promise<ProcStat | undefined> {
  try {
    const text = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), state: fields[0], startTime: fields[19] };
  } catch {
    return undefined;
  }
}

const running = (s: ProcStat | undefined): s is ProcStat => s !== undefined && s.state !== 'Z' && s.state !== 'X';

/** A live process's identity and argv when its comm is `comm` (never a zombie). */
export async function processNamed(pid: number, comm: string): Promise<(ProcessIdentity & { argv: string[] }) | undefined> {
  const s = await stat(pid);
  if (!running(s) || s.comm !== comm) return undefined;
  const argv = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').then((t) => t.split('\0'), () => undefined);
  return argv ? { pid, startTime: s.startTime, argv } : undefined;
}

/**
 * The live helpers (comm `comm`: berth-monitor, berth-init) that belong to an object of berth's: one of
 * their arguments is a path `<dir>/<64-hex id>/...`. By id: what start-up reconciliation looks for.
 */
export async function findHelpers(comm: string, dir: string): Promise<Map<string, ProcessIdentity[]>> {
  const out = new Map<string, ProcessIdentity[]>();
  const prefix = `${dir}/`;
  for (const entry of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const p = await processNamed(Number(entry), comm);
    const arg = p?.argv.find((a) => a.startsWith(prefix));
    const id = arg ? /^([a-f0-9]{64})\//.exec(arg.slice(prefix.length))?.[1] : undefined;
    if (!p || !id) continue;
    out.set(id, [...(out.get(id) ?? []), { pid: p.pid, startTime: p.startTime }]);
  }
  return out;
}

export async function processStartTime(pid: number): Promise<string | undefined> {
  return (await stat(pid))?.startTime;
}

/** Alive means: that PID, started at that time, and not a zombie waiting for its parent. */
export async function isAlive(p: ProcessIdentity): Promise<boolean> {
  const s = await stat(p.pid);
  return running(s) && s.startTime === p.startTime;
}
