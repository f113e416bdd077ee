// Loads berth.toml, applies flag overrides and validates the result against the schema.
import fs from 'node:fs';
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

/** Builds the effective config: defaults < file < flags. Throws ConfigError naming the key or flag. */
export function loadConfig(source: ConfigSource, overrides: readonly FlagOverride[] = []): BerthConfig {
  const raw = readToml(source);
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
}
