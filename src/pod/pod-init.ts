// The init of a pod's shared PID namespace (native/init, berth-init): started detached, so it outlives
// berthd; identified by PID and start time, so a reused PID is never mistaken for it.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { InvalidArgumentError } from '../errors';
import { packageRoot } from '../util/package-root';

const run = promisify(execFile);

export const INIT_BINARY = path.join(packageRoot(), 'native', 'bin', 'berth-init');

export interface PodInit {
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

/** Alive means: that PID, started at that time, and not a zombie waiting for its parent. */
export async function isAlive(init: PodInit): Promise<boolean> {
  const s = await stat(init.pid);
  return s !== undefined && s.startTime === init.startTime && s.state !== 'Z' && s.state !== 'X';
}

export async function startPodInit(pidFile: string, pin: string): Promise<PodInit> {
  await fs.mkdir(path.dirname(pin), { recursive: true, mode: 0o711 });
  try {
    await run(INIT_BINARY, ['--pid-file', pidFile, '--pin', pin], { timeout: 30_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new InvalidArgumentError(stderr || `berth-init failed: ${(err as Error).message}`);
  }
  const pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
  const s = await stat(pid);
  if (!s) throw new Error(`berth-init ${pid} exited at once`);
  return { pid, startTime: s.startTime };
}

/** Kills the init (and with it every process of the namespace) and waits until it is gone. */
export async function stopPodInit(init: PodInit): Promise<void> {
  if (!(await isAlive(init))) return;
  try {
    process.kill(init.pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  for (let i = 0; i < 200 && (await isAlive(init)); i++) await new Promise((r) => setTimeout(r, 10));
  if (await isAlive(init)) throw new Error(`pod init ${init.pid} did not die after SIGKILL`);
}
