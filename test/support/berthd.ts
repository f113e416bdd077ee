// Starts a real berthd process (the built dist/) with its own temporary root, state and socket.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectCri, type CriClient } from '../../src/client/cri-client';
import { packageRoot } from '../../src/util/package-root';

export const BERTHD = path.join(packageRoot(), 'dist', 'src', 'main.js');
/** As hack/install.sh starts it (and the shebang of main.ts says). */
const NODE_FLAGS = ['--max-semi-space-size=1'];

export interface BerthdOptions {
  /** Extra command-line flags. */
  args?: string[];
  /** berth.toml contents; written to <dir>/berth.toml and passed with --config. */
  configToml?: string;
  /** Reuse an existing base dir (to restart a daemon over the same root and state). */
  dir?: string;
  env?: NodeJS.ProcessEnv;
}

export interface BerthdHandle {
  dir: string;
  socket: string;
  endpoint: string;
  root: string;
  state: string;
  configPath: string;
  process: ChildProcess;
  client: CriClient;
  /** Everything berthd wrote to stderr and stdout so far. */
  output(): string;
  /** Sends the signal and waits for the exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Stops the daemon (if running) and removes its directory. */
  cleanup(): Promise<void>;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs berthd to completion (for `config`, `version`, and start-up failures). */
export function runBerthd(args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, BERTHD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berthd ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function waitReady(handle: BerthdHandle, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (handle.process.exitCode !== null) {
      throw new Error(`berthd exited with ${handle.process.exitCode} before it was ready:\n${handle.output()}`);
    }
    if (fs.existsSync(handle.socket)) {
      try {
        await handle.client.runtime.Version({ version: 'v1' }, { timeoutMs: 2000 });
        return;
      } catch (err) {
        lastError = err;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`berthd not ready within ${timeoutMs} ms (${String(lastError)}):\n${handle.output()}`);
}

export async function startBerthd(opts: BerthdOptions = {}): Promise<BerthdHandle> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-'));
  const socket = path.join(dir, 'run', 'berth.sock');
  const root = path.join(dir, 'root');
  const state = path.join(dir, 'state');
  const args = ['--listen', socket, '--root', root, '--state', state, '--log-format', 'json'];
  // Always an explicit config file, so that tests never read the machine's /etc/berth/berth.toml.
  const configPath = path.join(dir, 'berth.toml');
  if (opts.configToml !== undefined || !fs.existsSync(configPath)) fs.writeFileSync(configPath, opts.configToml ?? '');
  args.push('--config', configPath);
  args.push(...(opts.args ?? []));
  const child = spawn(process.execPath, [...NODE_FLAGS, BERTHD, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const client = connectCri(`unix://${socket}`);
  const handle: BerthdHandle = {
    dir,
    socket,
    endpoint: `unix://${socket}`,
    root,
    state,
    configPath,
    process: child,
    client,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = exitOf(child);
      child.kill(signal);
      return exited;
    },
    async cleanup() {
      client.close();
      await handle.stop('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitReady(handle, 20_000);
  } catch (err) {
    await handle.cleanup();
    throw err;
  }
  return handle;
}
