// Running helper processes cheaply. Node's child_process forks berthd (page tables of 100+ MB: 10-20 ms
// a spawn); posix_spawn through the addon costs about a millisecond. Children spawned here are reaped
// here: libuv reaps only its own.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipe, posixSpawn, posixSpawnAsync, reapChild } from '../native';

export interface CommandResult {
  code: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
}

/** runCommand's command outlived its timeout (and was killed). */
export class CommandTimeoutError extends Error {}

export interface RunOptions {
  /** Killed (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** Killed (SIGKILL) when this aborts; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with the child's PID each time it is found still running (every few ms). */
  onWait?: (pid: number) => void;
  /** The child's stdin (else /dev/null); closed here once the child has it. */
  stdinFd?: number;
  /** Or what the child reads on stdin (a pipe holds it all: at most MAX_INPUT_BYTES). */
  input?: string | Buffer;
  /** The child's whole environment; berthd's own when not given. */
  env?: Record<string, string>;
}

const MAX_INPUT_BYTES = 512 * 1024;

/** A pipe already holding `input` and closed for writing: its read end, for a child's stdin. */
function inputPipe(input: string | Buffer): number {
  const data = typeof input === 'string' ? Buffer.from(input) : input;
  if (data.length > MAX_INPUT_BYTES) throw new Error(`a helper's input of ${data.length} bytes is more than ${MAX_INPUT_BYTES}`);
  const [readFd, writeFd] = pipe();
  try {
    for (let off = 0; off < data.length; ) off += fs.writeSync(writeFd, data, off);
  } catch (err) {
    fs.closeSync(readFd);
    throw err;
  } finally {
    fs.closeSync(writeFd);
  }
  return readFd;
}

/** SIGKILLs a child of berthd's and reaps it. */
async function kill(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  await waitForExit(pid);
}

/**
 * Spawns argv (on the thread pool: berthd's thread does not wait for its exec) with stdout and stderr into
 * the files named; stdinFd, if given, is closed whatever happens.
 */
async function spawnWithOutputs(argv: string[], outFile: string, errFile: string, opts: RunOptions): Promise<number> {
  const { signal, env } = opts;
  const stdinFd = opts.stdinFd ?? (opts.input !== undefined ? inputPipe(opts.input) : undefined);
  try {
    signal?.throwIfAborted();
    // O_EXCL: the names are random, and a file (or symlink) already there is never written through.
    const out = fs.openSync(outFile, 'wx+', 0o600);
    try {
      const err = fs.openSync(errFile, 'wx+', 0o600);
      try {
        return await posixSpawnAsync(argv[0], argv, { stdinFd, stdoutFd: out, stderrFd: err, env });
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

export type ProcessEnd = { code: number | null; signal: number | null };

/** How long a waiter sleeps between looks when no SIGCHLD comes: signals of several exits can merge into
 * one, which wakes every waiter, so this only bounds how late a `stop` reason (a timeout) is noticed. */
const longestPause = (elapsedMs: number): number => (elapsedMs < 1000 ? 25 : 100);

/** Waiters for a child's exit, woken on every SIGCHLD. */
const exitWaiters = new Set<() => void>();

/**
 * Waits for the child's exit and reaps it: looked at once at once, then whenever a SIGCHLD arrives (and,
 * as a fallback, every 25-100 ms). Stops waiting, without killing, when `stop` says why (a timeout, a
 * cancellation): resolves that reason then.
 */
export async function waitForExit(pid: number, opts: { stop?: () => Error | undefined; onWait?: (pid: number) => void } = {}): Promise<ProcessEnd | Error> {
  listenForChildExits();
  const started = Date.now();
  for (;;) {
    const end = reapChild(pid) ?? opts.stop?.();
    if (end) return end;
    opts.onWait?.(pid);
    await new Promise<void>((resolve) => {
      const wake = () => {
        exitWaiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(wake, longestPause(Date.now() - started));
      exitWaiters.add(wake);
    });
  }
}

let captureDir: string | undefined;

/**
 * Where runCommand's output files go: a directory of berthd's own (`<state>/cmd`), emptied at
 * start-up, since a berthd killed while a helper runs never deletes its capture files. Without it
 * (a one-shot CLI command) the system's temp dir.
 */
export async function useCaptureDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  captureDir = dir;
}

/** Runs argv to its end, capturing its output through files in the capture dir (no pipes to pump). */
export async function runCommand(argv: string[], opts: RunOptions = {}): Promise<CommandResult> {
  const { timeoutMs = 60_000, signal, onWait } = opts;
  const scratchDir = captureDir ?? os.tmpdir();
  const tag = randomBytes(6).toString('hex');
  const outFile = path.join(scratchDir, `.cmd-${tag}.out`);
  const errFile = path.join(scratchDir, `.cmd-${tag}.err`);
  try {
    const pid = await spawnWithOutputs(argv, outFile, errFile, opts);
    const deadline = Date.now() + timeoutMs;
    const stop = (): Error | undefined => {
      if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new Error(`${path.basename(argv[0])} cancelled`);
      if (Date.now() > deadline) {
        return new CommandTimeoutError(`${path.basename(argv[0])} ${argv[1] ?? ''} ... did not finish within ${timeoutMs / 1000}s and was killed`);
      }
      return undefined;
    };
    const end = await waitForExit(pid, { stop, onWait });
    if (end instanceof Error) {
      await kill(pid);
      throw end;
    }
    return { ...end, stdout: fs.readFileSync(outFile, 'utf8'), stderr: fs.readFileSync(errFile, 'utf8') };
  } finally {
    fs.rmSync(outFile, { force: true });
    fs.rmSync(errFile, { force: true });
  }
}

/** A child whose stdout and stderr are pipes berthd reads (stdin: /dev/null). */
export interface PipedChild {
  pid: number;
  stdout: Readable;
  stderr: Readable;
}

/** Spawns argv with its output into pipes: for output that must be read while it runs, or bounded. */
export function spawnPiped(argv: string[]): PipedChild {
  const [outRead, outWrite] = pipe();
  const [errRead, errWrite] = pipe();
  let pid: number;
  try {
    pid = posixSpawn(argv[0], argv, { stdoutFd: outWrite, stderrFd: errWrite });
  } catch (err) {
    fs.closeSync(outRead);
    fs.closeSync(errRead);
    throw err;
  } finally {
    fs.closeSync(outWrite);
    fs.closeSync(errWrite);
  }
  const reader = (fd: number) => new net.Socket({ fd, readable: true, writable: false });
  return { pid, stdout: reader(outRead), stderr: reader(errRead) };
}

/** "exit status N" or "killed by signal N", for messages. */
export function describeEnd(end: { code: number | null; signal: number | null }): string {
  return end.signal !== null ? `killed by signal ${end.signal}` : `exit status ${end.code}`;
}

const adopted = new Set<number>();
const adoptedExitListeners = new Set<(pid: number, end: ProcessEnd) => void>();
let reapPending: NodeJS.Timeout | undefined;
let listening = false;

/** How long after a SIGCHLD the adopted children are looked at: signals of a burst of helper exits
 * (a container's creation ends several) make one pass over every monitor, not one each. */
const REAP_DELAY_MS = 100;

/** Reaps whichever adopted children have ended (a non-blocking waitpid each: ~0.7 µs). */
function reapAdopted(): void {
  reapPending = undefined;
  for (const pid of adopted) {
    let end: ProcessEnd | null;
    try {
      end = reapChild(pid);
    } catch {
      adopted.delete(pid);
      continue;
    }
    if (!end) continue;
    adopted.delete(pid);
    for (const listener of adoptedExitListeners) listener(pid, end);
  }
}

/**
 * Wakes waitForExit's waiters and reaps long-lived children (monitors) when the kernel says a child ended
 * (SIGCHLD), not on a timer:
 * nothing wakes berthd while they all run. Until reaped a dead one is a zombie, which liveness checks
 * already treat as gone. SIGCHLD also comes for every helper runCommand waits for; those are not
 * adopted, and reapChild(pid) never touches another child's status.
 */
function listenForChildExits(): void {
  if (listening) return;
  listening = true;
  // Node's signal handles are unref'd: this keeps no process alive.
  process.on('SIGCHLD', () => {
    for (const wake of [...exitWaiters]) wake();
    reapPending ??= setTimeout(reapAdopted, REAP_DELAY_MS);
    reapPending.unref();
  });
}

/** Whether pid is a child berthd started with spawnDetached and has not yet reaped: its end comes to
 * onAdoptedExit's listeners. A monitor left by an earlier berthd is not. */
export function isAdoptedChild(pid: number): boolean {
  return adopted.has(pid);
}

/** Calls listener with each adopted child's pid and status once it has ended and been reaped. */
export function onAdoptedExit(listener: (pid: number, end: ProcessEnd) => void): () => void {
  adoptedExitListeners.add(listener);
  return () => adoptedExitListeners.delete(listener);
}

/** Starts a process in a session of its own, its stderr to a file; it outlives berthd. */
export function spawnDetached(argv: string[], stderrFile: string): number {
  const errFd = fs.openSync(stderrFile, 'a', 0o600);
  // Listening before the spawn: a child that ends at once is not missed.
  listenForChildExits();
  try {
    const pid = posixSpawn(argv[0], argv, { stderrFd: errFd, newSession: true });
    adopted.add(pid);
    return pid;
  } finally {
    fs.closeSync(errFd);
  }
}
