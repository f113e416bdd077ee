// Loads berth.toml and its drop-ins (berth.d/*.toml beside it), applies flag overrides and validates
// the result against the schema.
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { configSchema, type BerthConfig } from './schema';
import { ConfigError, leafAt, resolveTable, setRaw } from './schema-kit';
import type { FlagOverride } from './flags';

export interface ConfigSource {
  path: string;
  /** A missing file is an error only when the path was given explicitly. */
  explicit: boolean;
}

function readToml(source: ConfigSource): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(source.path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !source.explicit) return {};
    throw new ConfigError(source.path, `cannot read config file: ${(err as Error).message}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(source.path, `line ${err.line}, column ${err.column}: ${err.message.split('\n')[0]}`);
    }
    throw err;
  }
}

/** The drop-ins of a config file: `<dir>/berth.d/*.toml` beside it, in lexical order (as CRI-O's crio.conf.d). */
export function dropInsOf(configPath: string): string[] {
  const dir = path.join(path.dirname(configPath), 'berth.d');
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.toml')).sort().map((n) => path.join(dir, n));
}

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Merges a drop-in over what came before: tables key by key, anything else replaced whole. */
function mergeRaw(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTable(v) && isTable(out[k]) ? mergeRaw(out[k] as Record<string, unknown>, v) : v;
  return out;
}

/** Validates one file's keys on their own, so that an error names the file that holds the bad key. */
function checkFile(file: string, raw: Record<string, unknown>): void {
  try {
    resolveTable(configSchema, raw);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${file}: ${err.key}`, err.message.slice(err.key.length + 2));
    throw err;
  }
}

/** Builds the effective config: defaults < file < drop-ins < flags. Throws ConfigError naming the key or flag. */
export function loadConfig(source: ConfigSource, overrides: readonly FlagOverride[] = []): BerthConfig {
  let raw = readToml(source);
  for (const file of dropInsOf(source.path)) {
    const dropIn = readToml({ path: file, explicit: true });
    checkFile(file, dropIn);
    raw = mergeRaw(raw, dropIn);
  }
  for (const { flag, key, text } of overrides) {
    setRaw(raw, key, leafAt(configSchema, key).fromText(text, flag));
  }
  let config: BerthConfig;
  try {
    config = resolveTable(configSchema, raw);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${source.path}: ${err.key}`, err.message.slice(err.key.length + 2));
    throw err;
  }
  checkConsistency(config);
  return config;
}

/** Cross-key checks that a single key's schema cannot express. */
export function checkConsistency(config: BerthConfig): void {
  const { default_handler, handlers } = config.runtime;
  if (!(default_handler in handlers)) {
    throw new ConfigError(
      'runtime.default_handler',
      `"${default_handler}" is not a configured handler (have: ${Object.keys(handlers).join(', ') || 'none'})`,
    );
  }
  for (const [name, h] of Object.entries(handlers)) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) {
      throw new ConfigError(`runtime.handlers.${name}`, 'handler names must be DNS labels (RuntimeClass handler)');
    }
    if (h.runtime_path !== 'builtin' && !h.runtime_path.startsWith('/')) {
      throw new ConfigError(`runtime.handlers.${name}.runtime_path`, `expected "builtin" or an absolute path`);
    }
  }
  for (const [host, r] of Object.entries(config.image.registries)) {
    if (r.mirror_only && r.mirrors.length === 0) {
      throw new ConfigError(`image.registries."${host}".mirror_only`, 'a mirror-only registry needs mirrors (image.registries."<host>".mirrors)');
    }
  }
}
