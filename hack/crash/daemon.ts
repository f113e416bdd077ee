// berthd for the crash suite: like test/support/berthd.ts's startBerthd, but on a fixed dir that is never
// removed on a failed start (state must carry over from round to round), with its output in a log file of
// its own per start, a TMPDIR of its own (<dir>/tmp, scanned for leftovers), and a kill -9 that waits for
// the exit.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { connectCri, type CriClient } from '../../src/client/cri-client';
import { BERTHD } from '../../test/support/berthd';

export interface Daemon {
  dir: string;
  root: string;
  state: string;
  socket: string;
  logFile: string;
  proc: ChildProcess;
  pid: number;
  client: CriClient;
  /** Resolves when the process is gone (with its signal, if killed). */
  exited: Promise<NodeJS.Signals | number | null>;
  isRunning(): boolean;
  /** SIGKILL, as a crash would; waits for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (berthd finishes calls in flight), SIGKILL after `graceMs`; waits for the exit. */
  stop(graceMs?: number): Promise<void>;
  log(): string;
}

export function daemonPaths(dir: string) {
  return { root: path.join(dir, 'root'), state: path.join(dir, 'state'), socket: path.join(dir, 'run', 'berth.sock'), config: path.join(dir, 'berth.toml') };
}

export class StartError extends Error {}

export async function startDaemon(dir: string, args: readonly string[], logFile: string, readyMs = 60_000): Promise<Daemon> {
  const p = daemonPaths(dir);
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(p.config)) fs.writeFileSync(p.config, '');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const fd = fs.openSync(logFile, 'a');
  const argv = ['--max-semi-space-size=1', BERTHD, '--listen', p.socket, '--root', p.root, '--state', p.state, '--log-format', 'json', '--config', p.config, ...args];
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', fd, fd], env: { ...process.env, BERTH_FAILPOINTS: '', TMPDIR: path.join(dir, 'tmp') } });
  fs.closeSync(fd);
  proc.on('error', () => undefined);
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => proc.once('exit', (code, signal) => resolve(signal ?? code)));
  const isRunning = () => proc.exitCode === null && proc.signalCode === null;
  const client = connectCri(`unix://${p.socket}`, { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 200 });
  const log = () => {
    try {
      return fs.readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const d: Daemon = {
    dir,
    root: p.root,
    state: p.state,
    socket: p.socket,
    logFile,
    proc,
    pid: proc.pid ?? -1,
    client,
    exited,
    isRunning,
    async kill() {
      if (isRunning()) process.kill(d.pid, 'SIGKILL');
      await exited;
      client.close();
    },
    async stop(graceMs = 20_000) {
      if (isRunning()) {
        process.kill(d.pid, 'SIGTERM');
        const timer = setTimeout(() => isRunning() && process.kill(d.pid, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      client.close();
    },
    log,
  };
  const deadline = Date.now() + readyMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!isRunning()) {
      client.close();
      throw new StartError(`berthd exited (${proc.exitCode ?? proc.signalCode}) before it was ready; the end of its log:\n${tail(log(), 30)}`);
    }
    if (fs.existsSync(p.socket)) {
      try {
        await client.runtime.Version({ version: 'v1' }, { timeoutMs: 2000 });
        return d;
      } catch (err) {
        lastError = err;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await d.kill();
  throw new StartError(`berthd not ready within ${readyMs} ms (${String(lastError)}); the end of its log:\n${tail(log(), 30)}`);
}

export function tail(text: string, lines: number): string {
  return text.split('\n').filter(Boolean).slice(-lines).join('\n');
}
