// Finds the CNI network configuration berth uses: the lexically first valid file in the conf dir,
// or the one whose network name is configured. The network is ready only when one is found.
import { watch, type FSWatcher } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

const CONFIG_EXTENSIONS = ['.conf', '.conflist', '.json'];

export interface CniNetworkConfig {
  name: string;
  cniVersion: string;
  file: string;
  /** The plugins of the network: a .conf file is a list of one. */
  plugins: Array<Record<string, unknown> & { type: string }>;
  raw: Record<string, unknown>;
}

export type CniLookup = { ready: true; network: CniNetworkConfig } | { ready: false; message: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses one config file; throws an Error naming the file and the problem. */
export function parseNetworkConfig(file: string, text: string): CniNetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(raw)) throw new Error(`${file}: expected a JSON object`);
  if (typeof raw.name !== 'string' || raw.name === '') throw new Error(`${file}: "name" is missing`);
  const cniVersion = typeof raw.cniVersion === 'string' ? raw.cniVersion : '0.2.0';
  const plugins = file.endsWith('.conflist') || Array.isArray(raw.plugins) ? raw.plugins : [raw];
  if (!Array.isArray(plugins) || plugins.length === 0) throw new Error(`${file}: "plugins" must be a non-empty list`);
  plugins.forEach((plugin, i) => {
    if (!isRecord(plugin) || typeof plugin.type !== 'string' || plugin.type === '') {
      throw new Error(`${file}: plugin ${i} has no "type"`);
    }
  });
  return { name: raw.name, cniVersion, file, plugins: plugins as CniNetworkConfig['plugins'], raw };
}

export async function findNetworkConfig(confDir: string, wantedName: string): Promise<CniLookup> {
  let names: string[];
  try {
    names = (await fs.readdir(confDir)).filter((n) => CONFIG_EXTENSIONS.includes(path.extname(n))).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return { ready: false, message: `cannot read CNI config dir ${confDir}: ${(err as Error).message}` };
    names = [];
  }
  const problems: string[] = [];
  for (const name of names) {
    const file = path.join(confDir, name);
    try {
      const network = parseNetworkConfig(file, await fs.readFile(file, 'utf8'));
      if (!wantedName || network.name === wantedName) return { ready: true, network };
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const what = wantedName ? `no CNI network named "${wantedName}"` : 'no network config found';
  const why = problems.length ? ` (skipped: ${problems.join('; ')})` : '';
  return { ready: false, message: `cni config uninitialized: ${what} in ${confDir}${why}` };
}

/**
 * The network config lookup, cached until the conf dir changes (an inotify watch on it, as containerd and
 * CRI-O watch theirs): Status (every few seconds from the kubelet) and RunPodSandbox ask for it, and it
 * changes only when an operator or a network add-on writes the dir. A dir that does not exist yet is read
 * on every lookup until it does. Edits to a config file's symlink target elsewhere are not seen (as
 * containerd does not see them).
 */
export class NetworkConfigSource {
  private watcher: FSWatcher | undefined;
  private cached: CniLookup | undefined;
  /** Bumped by every change: a lookup that was reading while the dir changed is not cached. */
  private generation = 0;

  constructor(
    private readonly confDir: string,
    private readonly wantedName: string,
  ) {}

  async lookup(): Promise<CniLookup> {
    if (this.cached) return this.cached;
    this.ensureWatch();
    const generation = this.generation;
    const lookup = await findNetworkConfig(this.confDir, this.wantedName);
    if (this.watcher && generation === this.generation) this.cached = lookup;
    return lookup;
  }

  private ensureWatch(): void {
    if (this.watcher) return;
    try {
      this.watcher = watch(this.confDir, { persistent: false }, () => this.changed());
    } catch {
      return; // no dir yet: nothing is cached, every lookup reads
    }
    this.watcher.on('error', () => {
      this.close();
      this.changed();
    });
  }

  private changed(): void {
    this.generation++;
    this.cached = undefined;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
