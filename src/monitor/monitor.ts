// Starting a container's berth-monitor and reading what it records. The monitor is started detached:
// berthd may exit or be killed at any time, the monitor and its container carry on.
import fs from 'node:fs/promises';
import path from 'node:path';
import { helperBinary } from '../util/helpers';
import { findHelpers, isAlive, processStartTime, type ProcessIdentity } from '../util/process';
import { spawnDetached } from '../util/spawn';
import { poll } from '../util/poll';

export const MONITOR_BINARY = helperBinary('monitor');

/** The files of one monitor, all in the container's volatile state dir. */
export interface MonitorFiles {
  dir: string;
  pidFile: string;
  containerPidFile: string;
  exitFile: string;
  monitorLog: string;
  /** Attach clients connect here (SOCK_STREAM, framed; docs/monitor.md). */
  attachSocket: string;
  /** Line commands: `resize <rows> <cols>`, `reopen`. */
  controlSocket: string;
}

/** A monitor's files: its own in `dir`, and its exit file where berthd watches for every exit. */
export function monitorFiles(dir: string, exitFile: string): MonitorFiles {
  return {
    dir,
    pidFile: path.join(dir, 'pid'),
    containerPidFile: path.join(dir, 'container.pid'),
    exitFile,
    monitorLog: path.join(dir, 'monitor.log'),
    attachSocket: path.join(dir, 'attach'),
    controlSocket: path.join(dir, 'control'),
  };
}

export interface ExitStatus {
  exitCode: number;
  signal: number;
  oomKilled: boolean;
  /** RFC 3339 with nanoseconds. */
  finishedAt: string;
  /** Set when the container never ran (the runtime's create failed). */
  error: string;
}

export interface MonitorOptions {
  files: MonitorFiles;
  logPath: string;
  /** The runtime's create command; its container init becomes the monitored process. */
  command: string[];
  /** The container's memory cgroup dir, read for OOM kills when it exits. */
  oomCgroup?: string;
  /** Keep a stdin pipe (closed after the first attach client with `stdinOnce`). */
  stdin?: { once: boolean };
  /** A terminal: the runtime sends the pty master to this socket (runc's --console-socket). */
  consoleSocket?: string;
}

export interface StartedMonitor {
  monitor: ProcessIdentity;
  /** The container's init, once the runtime created it. */
  containerPid: number;
}

export class CreateFailedError extends Error {}

export async function startMonitor(opts: MonitorOptions, timeoutMs = 60_000): Promise<StartedMonitor> {
  const { files } = opts;
  const args = [
    '--log', opts.logPath,
    '--exit-file', files.exitFile,
    '--pid-file', files.pidFile,
    '--container-pid-file', files.containerPidFile,
    '--attach-socket', files.attachSocket,
    '--control-socket', files.controlSocket,
    ...(opts.oomCgroup ? ['--oom-cgroup', opts.oomCgroup] : []),
    ...(opts.stdin ? ['--stdin', ...(opts.stdin.once ? ['--stdin-once'] : [])] : []),
    ...(opts.consoleSocket ? ['--tty', '--console-socket', opts.consoleSocket] : []),
    '--', ...opts.command,
  ];
  let pid: number;
  try {
    pid = spawnDetached([MONITOR_BINARY, ...args], files.monitorLog);
  } catch (err) {
    throw new CreateFailedError(`could not start ${MONITOR_BINARY}: ${(err as Error).message}`);
  }
  if (!pid) throw new CreateFailedError(`could not start ${MONITOR_BINARY}`);
  const monitor = { pid, startTime: (await processStartTime(pid)) ?? '' };
  // The pid file is a small read on tmpfs: looking every 2 ms costs less than the milliseconds a
  // coarser poll would add to every CreateContainer.
  const created = await poll(
    async () => {
      const containerPid = await readPid(files.pidFile);
      if (containerPid) return { monitor, containerPid };
      const exit = await readExit(files.exitFile);
      if (exit) throw new CreateFailedError(exit.error || `the container exited at once with code ${exit.exitCode}`);
      if (!(await isAlive(monitor))) {
        const log = (await fs.readFile(files.monitorLog, 'utf8').catch(() => '')).trim();
        throw new CreateFailedError(`berth-monitor exited before the container was created${log ? `: ${log}` : ''}`);
      }
      return undefined;
    },
    { first: 1, max: 2, deadline: Date.now() + timeoutMs },
  );
  if (created) return created;
  throw new CreateFailedError(`the runtime did not create the container within ${timeoutMs / 1000}s`);
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export async function readExit(file: string): Promise<ExitStatus | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const raw = JSON.parse(text) as Partial<ExitStatus>;
  return {
    exitCode: raw.exitCode ?? 255,
    signal: raw.signal ?? 0,
    oomKilled: raw.oomKilled ?? false,
    finishedAt: raw.finishedAt ?? new Date().toISOString(),
    error: raw.error ?? '',
  };
}

/** Asks the monitor to reopen the container's log file (after the kubelet rotated it). */
export function reopenLog(monitor: ProcessIdentity): void {
  process.kill(monitor.pid, 'SIGUSR1');
}

/**
 * Every live berth-monitor working for a container under `stateRoot` (a container's own, or one of
 * its exec sessions'), by container id: found by their command lines, which name files in
 * `<stateRoot>/containers/<id>/`. Start-up reconciliation uses it for monitors no record knows (a
 * crash between spawning the monitor and recording it), identified with their start time so that a
 * PID reused later is never killed.
 */
export function findMonitors(stateRoot: string): Promise<Map<string, ProcessIdentity[]>> {
  return findHelpers(path.basename(MONITOR_BINARY), path.join(stateRoot, 'containers'));
}

/**
 * Makes sure a monitor is gone: it exits by itself once its container is gone and its output drained
 * (waited for up to `graceMs`), else it is SIGKILLed. Only that process, started at that time.
 */
export async function stopMonitor(monitor: ProcessIdentity, graceMs = 1000): Promise<void> {
  const deadline = Date.now() + graceMs;
  while ((await isAlive(monitor)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  if (!(await isAlive(monitor))) return;
  try {
    process.kill(monitor.pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
