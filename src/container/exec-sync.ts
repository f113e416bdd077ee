// ExecSync: a command run in a running container through its runtime's `exec`, output captured up to
// a bound, and at the timeout the process killed so that nothing of it is left running.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DeadlineExceededError } from '../errors';
import type { OciRuntime } from '../oci/runtime';
import { spawnPiped, waitForExit, type ProcessEnd } from '../util/spawn';

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** How long a runtime's exec gets to reap the process killed at the timeout, before it is killed too. */
const RUNTIME_GRACE_MS = 2000;

/** Output beyond this is dropped (the kubelet only reads probe output for its messages). */
export const MAX_EXEC_OUTPUT = 16 << 20;

class BoundedSink {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): void {
    const room = MAX_EXEC_OUTPUT - this.size;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.size += part.length;
  }

  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** The container's process with other args: same user, capabilities, env, cwd and security. */
export async function execProcess(bundleDir: string, cmd: string[]): Promise<Record<string, unknown>> {
  const spec = JSON.parse(await fs.readFile(path.join(bundleDir, 'config.json'), 'utf8')) as { process: Record<string, unknown> };
  return { ...spec.process, args: cmd, terminal: false };
}

export async function execSync(runtime: OciRuntime, id: string, bundleDir: string, scratchDir: string, cmd: string[], timeoutSeconds: number): Promise<ExecResult> {
  const tag = randomBytes(6).toString('hex');
  const processFile = path.join(scratchDir, `exec-${tag}.json`);
  const pidFile = path.join(scratchDir, `exec-${tag}.pid`);
  await fs.writeFile(processFile, JSON.stringify(await execProcess(bundleDir, cmd)), { mode: 0o600 });
  try {
    const child = spawnPiped(runtime.execCommand(id, processFile, pidFile));
    const stdout = new BoundedSink();
    const stderr = new BoundedSink();
    const drained = Promise.all([drain(child.stdout, stdout), drain(child.stderr, stderr)]);
    let timedOut = false;
    let exited = false;
    const timer =
      timeoutSeconds > 0
        ? setTimeout(() => {
            timedOut = true;
            // The process only: its runtime must live on to reap it (or it lingers as a zombie in
            // the container's PID namespace); the runtime itself goes only if it does not follow.
            void killExec(pidFile);
            setTimeout(() => !exited && killQuietly(child.pid), RUNTIME_GRACE_MS).unref();
          }, timeoutSeconds * 1000)
        : undefined;
    const end = (await waitForExit(child.pid).finally(() => clearTimeout(timer))) as ProcessEnd;
    exited = true;
    // As Node's 'close': the output is read to its end, which a process left in the background delays.
    await drained;
    const exitCode = end.code ?? 128 + (end.signal ?? 0);
    if (timedOut) throw new DeadlineExceededError(`ExecSync ${JSON.stringify(cmd.join(' '))} in container ${id} timed out after ${timeoutSeconds}s; the command was killed`);
    return { stdout: stdout.buffer(), stderr: stderr.buffer(), exitCode };
  } finally {
    await fs.rm(processFile, { force: true });
    await fs.rm(pidFile, { force: true });
  }
}

/** Kills an exec'd process itself (a runtime cannot forward SIGKILL), then the processes around it. */
export async function killExec(pidFile: string, ...others: Array<number | undefined>): Promise<void> {
  const pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
  for (const p of [pid, ...others]) if (p) killQuietly(p);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Reads a pipe to its end into a bounded sink. */
function drain(from: Readable, into: BoundedSink): Promise<void> {
  return new Promise((resolve) => {
    from.on('data', (c: Buffer) => into.push(c));
    from.once('end', resolve);
    from.once('close', resolve);
    from.once('error', () => resolve());
  });
}
