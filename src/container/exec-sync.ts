// ExecSync: a command run in a running container through its runtime's `exec`, output captured up to
// a bound, and at the timeout the process killed so that nothing of it is left running.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { DeadlineExceededError } from '../errors';
import type { OciRuntime } from '../oci/runtime';

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
    const [binary, ...args] = runtime.execCommand(id, processFile, pidFile);
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout = new BoundedSink();
    const stderr = new BoundedSink();
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    let timedOut = false;
    const timer =
      timeoutSeconds > 0
        ? setTimeout(() => {
            timedOut = true;
            // The process only: its runtime must live on to reap it (or it lingers as a zombie in
            // the container's PID namespace); the runtime itself goes only if it does not follow.
            void killExec(pidFile);
            setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), RUNTIME_GRACE_MS).unref();
          }, timeoutSeconds * 1000)
        : undefined;
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
    }).finally(() => clearTimeout(timer));
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
  for (const p of [pid, ...others]) {
    if (!p) continue;
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

const signalNumber = (signal: NodeJS.Signals): number => constants.signals[signal] ?? 0;
