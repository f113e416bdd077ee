// Running helper processes cheaply. Node's child_process forks berthd (page tables of 100+ MB: 10-20 ms
// a spawn); posix_spawn through the addon costs about a millisecond. Children spawned here are reaped
// here: libuv reaps only its own.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { posixSpawn, reapChild } from '../native';

export interface CommandResult {
  code: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Killed (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** Killed (SIGKILL) when this aborts; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with the child's PID each time it is found still running (every few ms). */
  onWait?: (pid: number) => void;
  /** The child's stdin (else /dev/null); closed here once the child has it. */
  stdinFd?: number;
}

async function kill(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  while (!reapChild(pid)) await sleep(1);
}

/** Spawns argv with stdout and stderr into the files named; stdinFd, if given, is closed whatever happens. */
function spawnWithOutputs(argv: string[], outFile: string, errFile: string, stdinFd?: number, signal?: AbortSignal): number {
  try {
    signal?.throwIfAborted();
    const out = fs.openSync(outFile, 'w+', 0o600);
    try {
      const err = fs.openSync(errFile, 'w+', 0o600);
      try {
        return posixSpawn(argv[0], argv, { stdinFd, stdoutFd: out, stderrFd: err });
      } finally {
        fs.closeSync(err);
      }
    } finally {
      fs.closeSync(out);
    }
  } finally {
    if (stdinFd !== undefined) fs.closeSync(stdinFd);
  }
}

/** Runs argv to its end, capturing its output through files in scratchDir (no pipes to pump). */
export async function runCommand(argv: string[], scratchDir: string, opts: RunOptions = {}): Promise<CommandResult> {
  const { timeoutMs = 60_000, signal, onWait, stdinFd } = opts;
  const tag = randomBytes(6).toString('hex');
  const outFile = path.join(scratchDir, `.cmd-${tag}.out`);
  const errFile = path.join(scratchDir, `.cmd-${tag}.err`);
  try {
    const pid = spawnWithOutputs(argv, outFile, errFile, stdinFd, signal);
    const deadline = Date.now() + timeoutMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 5)) {
      const end = reapChild(pid);
      if (end) return { ...end, stdout: fs.readFileSync(outFile, 'utf8'), stderr: fs.readFileSync(errFile, 'utf8') };
      if (signal?.aborted) {
        await kill(pid);
        throw signal.reason instanceof Error ? signal.reason : new Error(`${path.basename(argv[0])} cancelled`);
      }
      if (Date.now() > deadline) {
        await kill(pid);
        throw new Error(`${path.basename(argv[0])} ${argv[1] ?? ''} ... did not finish within ${timeoutMs / 1000}s and was killed`);
      }
      onWait?.(pid);
      await sleep(delay);
    }
  } finally {
    fs.rmSync(outFile, { force: true });
    fs.rmSync(errFile, { force: true });
  }
}

const adopted = new Set<number>();
let reaper: NodeJS.Timeout | undefined;

/** Reaps long-lived children (monitors) whenever they end; until then a dead one is a zombie, which
 * liveness checks already treat as gone. */
function adopt(pid: number): void {
  adopted.add(pid);
  reaper ??= setInterval(() => {
    for (const p of adopted) {
      try {
        if (reapChild(p)) adopted.delete(p);
      } catch {
        adopted.delete(p);
      }
    }
  }, 1000);
  reaper.unref();
}

/** Starts a process in a session of its own, its stderr to a file; it outlives berthd. */
export function spawnDetached(argv: string[], stderrFile: string): number {
  const errFd = fs.openSync(stderrFile, 'a', 0o600);
  try {
    const pid = posixSpawn(argv[0], argv, { stderrFd: errFd, newSession: true });
    adopt(pid);
    return pid;
  } finally {
    fs.closeSync(errFd);
  }
}
