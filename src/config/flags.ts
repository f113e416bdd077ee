// Command-line parsing for berthd: a sub-command, --config, and flags that override config keys.

export const DEFAULT_CONFIG_PATH = '/etc/berth/berth.toml';

/** Flags that set a config key; the key's schema parses and checks the flag's text. */
export const KEY_FLAGS: Record<string, string> = {
  listen: 'listen',
  root: 'root',
  state: 'state',
  'log-level': 'log_level',
  'log-format': 'log_format',
  'shutdown-timeout': 'shutdown_timeout_seconds',
  metrics: 'metrics.enabled',
  'metrics-address': 'metrics.address',
  'metrics-port': 'metrics.port',
  'cgroup-driver': 'runtime.cgroup_driver',
  'default-runtime': 'runtime.default_handler',
  'cni-conf-dir': 'network.conf_dir',
  'cni-plugin-dirs': 'network.plugin_dirs',
  'cni-network': 'network.network_name',
};

/** Boolean flags may stand alone (`--metrics` means `--metrics=true`). */
const BOOLEAN_FLAGS = new Set(['metrics']);

export interface FlagOverride {
  flag: string;
  key: string;
  text: string;
}

export interface ParsedArgs {
  command: string[];
  configPath: string;
  /** True when --config was given: then a missing file is an error. */
  configExplicit: boolean;
  overrides: FlagOverride[];
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = { command: [], configPath: DEFAULT_CONFIG_PATH, configExplicit: false, overrides: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      parsed.command.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    let text = eq === -1 ? undefined : arg.slice(eq + 1);
    if (name !== 'config' && !(name in KEY_FLAGS) && name !== 'help') {
      throw new UsageError(`unknown flag --${name}`);
    }
    if (name === 'help') {
      parsed.command.unshift('help');
      continue;
    }
    if (text === undefined) {
      const next = argv[i + 1];
      if (BOOLEAN_FLAGS.has(name) && (next === undefined || !['true', 'false'].includes(next))) {
        text = 'true';
      } else {
        if (next === undefined) throw new UsageError(`flag --${name} needs a value`);
        text = next;
        i++;
      }
    }
    if (name === 'config') {
      parsed.configPath = text;
      parsed.configExplicit = true;
    } else {
      parsed.overrides.push({ flag: `--${name}`, key: KEY_FLAGS[name], text });
    }
  }
  return parsed;
}

export function usage(): string {
  const flags = Object.entries(KEY_FLAGS)
    .map(([flag, key]) => `  --${flag.padEnd(18)} sets ${key}`)
    .join('\n');
  return `usage: berthd [serve|config|images import FILE...|version] [--config FILE] [flags]

  serve     run the CRI server (the default)
  config    print the effective configuration as commented TOML
  images import FILE...
            load OCI image-layout or docker save archives into the image store
  version   print berth's version

  --config FILE         configuration file (default ${DEFAULT_CONFIG_PATH}; a missing default file means defaults)
${flags}
`;
}
