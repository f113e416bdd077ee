// Finds the CNI network configuration berth uses: the lexically first valid file in the conf dir,
// or the one whose network name is configured. The network is ready only when one is found.
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
