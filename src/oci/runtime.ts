// One OCI runtime handler: a binary with runc's command line (berth-runtime, runc or crun) and the
// state directory it keeps its containers in. berthd only ever drives a runtime through this class.
import fs from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BerthConfig } from '../config/schema';
import { InvalidArgumentError, NotFoundError } from '../errors';
import { helperBinary } from '../util/helpers';
import { handlerFeatures, type HandlerFeatures } from './handlers';
import { runCommand, type CommandResult } from '../util/spawn';

export const BUILTIN_RUNTIME = helperBinary('runtime');

export type RuntimeStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

export interface RuntimeState {
  status: RuntimeStatus;
  pid: number;
}

export class RuntimeError extends Error {}

export class OciRuntime {
  private rootMade = false;

  constructor(
    readonly handler: string,
    readonly binary: string,
    readonly root: string,
    /** Global flags for every command (--systemd-cgroup with the systemd cgroup driver). */
    private readonly globalArgs: readonly string[] = [],
    readonly features: HandlerFeatures = handlerFeatures(''),
  ) {}

  private base(): string[] {
    return [this.binary, '--root', this.root, ...this.globalArgs];
  }

  /** The command that creates a container (run under its monitor, which becomes the init's parent). */
  createCommand(id: string, bundle: string, pidFile: string, opts: { consoleSocket?: string; logFile: string }): string[] {
    return [
      ...this.base(),
      '--log', opts.logFile,
      '--log-format', 'json',
      'create', '--bundle', bundle, '--pid-file', pidFile,
      ...(opts.consoleSocket ? ['--console-socket', opts.consoleSocket] : []),
      id,
    ];
  }

  execCommand(id: string, processFile: string, pidFile: string, opts: { consoleSocket?: string } = {}): string[] {
    const terminal = opts.consoleSocket ? ['--console-socket', opts.consoleSocket] : [];
    return [...this.base(), 'exec', '--process', processFile, '--pid-file', pidFile, ...terminal, id];
  }

  async start(id: string): Promise<void> {
    await this.call(['start', id]);
  }

  /** The runtime's view of a container; undefined when it does not know the container. */
  async state(id: string): Promise<RuntimeState | undefined> {
    const result = await this.exec(['state', id]);
    if (result.code === 0) {
      const s = JSON.parse(result.stdout) as { status: RuntimeStatus; pid: number };
      return { status: s.status, pid: s.pid };
    }
    if (/does not exist|not found|no such/i.test(stderrText(result.stderr))) return undefined;
    throw this.failure(['state', id], result);
  }

  /** Signals the container's init, or with `all` every process of its cgroup. */
  async kill(id: string, signal: string, all = false): Promise<void> {
    await this.call(['kill', ...(all ? ['--all'] : []), id, signal]);
  }

  /** Forgets a container (killing it when `force`); a container the runtime does not know is fine. */
  async delete(id: string, force: boolean): Promise<void> {
    try {
      await this.call(['delete', ...(force ? ['--force'] : []), id]);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
  }

  /** The ids of the containers this runtime keeps state for (its state root's entries named as ids). */
  async containerIds(): Promise<string[]> {
    const names = await fs.readdir(this.root).catch(() => [] as string[]);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n));
  }

  /** Applies new cgroup limits (OCI LinuxResources) to a running container. */
  async update(id: string, resources: unknown, scratchDir: string): Promise<void> {
    const file = path.join(scratchDir, `resources-${process.hrtime.bigint()}.json`);
    await fs.writeFile(file, JSON.stringify(resources));
    try {
      await this.call(['update', '--resources', file, id]);
    } finally {
      await fs.rm(file, { force: true });
    }
  }

  private async call(args: string[]): Promise<void> {
    const result = await this.exec(args);
    if (result.code !== 0) throw this.failure(args, result);
  }

  private exec(args: string[]): Promise<CommandResult> {
    // The runtime's own state dir, made on first use.
    if (!this.rootMade) {
      mkdirSync(this.root, { recursive: true, mode: 0o711 });
      this.rootMade = true;
    }
    return runCommand([...this.base(), ...args]);
  }

  private failure(args: string[], result: CommandResult): Error {
    const detail = stderrText(result.stderr) || (result.signal ? `killed by signal ${result.signal}` : `exit code ${result.code}`);
    const message = `${this.handler} runtime (${path.basename(this.binary)}) ${args[0]} failed: ${detail}`;
    if (/does not exist|not found/i.test(detail) && args[0] !== 'create') return new NotFoundError(message);
    return new RuntimeError(message);
  }
}

/** A runtime's stderr as one line; runc with --log-format json writes JSON lines: their messages only. */
function stderrText(stderr: string): string {
  return stderr
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string };
        return entry.msg ?? line;
      } catch {
        return line;
      }
    })
    .join('; ');
}

/** Reads the last error a runtime wrote to its --log file (JSON lines, as runc writes them). */
export async function lastRuntimeError(logFile: string): Promise<string | undefined> {
  const text = await fs.readFile(logFile, 'utf8').catch(() => '');
  const lines = text.trim().split('\n').filter(Boolean);
  for (const line of lines.reverse()) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if (entry.level === 'error' || entry.level === 'fatal') return entry.msg;
    } catch {
      return line;
    }
  }
  return undefined;
}

/** The runtimes configured in berth.toml, by handler name. */
export class RuntimeRegistry {
  private readonly runtimes = new Map<string, OciRuntime>();

  constructor(
    private readonly config: BerthConfig,
    globalArgs: readonly string[] = [],
  ) {
    for (const [name, handler] of Object.entries(config.runtime.handlers)) {
      const binary = handler.runtime_path === 'builtin' ? BUILTIN_RUNTIME : handler.runtime_path;
      const root = handler.runtime_root || path.join(config.state, 'runtime', name);
      this.runtimes.set(name, new OciRuntime(name, binary, root, globalArgs, handlerFeatures(handler.runtime_path)));
    }
  }

  /** Every configured handler's runtime (reconciliation looks for state no record knows of). */
  all(): OciRuntime[] {
    return [...this.runtimes.values()];
  }

  get(handler: string): OciRuntime {
    const name = handler || this.config.runtime.default_handler;
    const runtime = this.runtimes.get(name);
    if (!runtime) throw new InvalidArgumentError(`unknown runtime handler ${JSON.stringify(name)}: configured are ${[...this.runtimes.keys()].join(', ')}`);
    return runtime;
  }
}
