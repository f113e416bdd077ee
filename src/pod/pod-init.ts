// The init of a pod's shared PID namespace (native/init, berth-init): started detached, so it outlives
// berthd; identified by PID and start time, so a reused PID is never mistaken for it.
import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../errors';
import { helperBinary } from '../util/helpers';
import { isAlive, processStartTime, type ProcessIdentity } from '../util/process';
import { describeEnd, runCommand } from '../util/spawn';

export { isAlive };

export const INIT_BINARY = helperBinary('init');

export type PodInit = ProcessIdentity;

/** Starts the init; `cgroupArgs` (the cgroup driver's prepareInit) start it inside its cgroup. */
export async function startPodInit(pidFile: string, pin: string, cgroupArgs: readonly string[] = []): Promise<PodInit> {
  await fs.mkdir(path.dirname(pin), { recursive: true, mode: 0o711 });
  const end = await runCommand([INIT_BINARY, '--pid-file', pidFile, '--pin', pin, ...cgroupArgs], { timeoutMs: 30_000 });
  if (end.code !== 0) throw new InvalidArgumentError(end.stderr.trim() || `berth-init failed: ${describeEnd(end)}`);
  const pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
  const startTime = await processStartTime(pid);
  if (!startTime) throw new Error(`berth-init ${pid} exited at once`);
  return { pid, startTime };
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
