// Identifying long-lived processes across berthd restarts: a PID with its start time, so that a
// reused PID is never mistaken for the process berth started.
import fs from 'node:fs/promises';

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot when it started. */
  startTime: string;
}

async function stat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  try {
    const text = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], startTime: fields[19] };
  } catch {
    return undefined;
  }
}

export async function processStartTime(pid: number): Promise<string | undefined> {
  return (await stat(pid))?.startTime;
}

/** Alive means: that PID, started at that time, and not a zombie waiting for its parent. */
export async function isAlive(p: ProcessIdentity): Promise<boolean> {
  const s = await stat(p.pid);
  return s !== undefined && s.startTime === p.startTime && s.state !== 'Z' && s.state !== 'X';
}
