import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load';
import { parseArgs, UsageError } from '../../src/config/flags';
import { printConfig } from '../../src/config/print';
import { configSchema } from '../../src/config/schema';
import { ConfigError, resolveTable } from '../../src/config/schema-kit';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function configFile(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-config-'));
  dirs.push(dir);
  const file = path.join(dir, 'berth.toml');
  fs.writeFileSync(file, text);
  return file;
}

const load = (text: string, argv: string[] = []) =>
  loadConfig({ path: configFile(text), explicit: true }, parseArgs(argv).overrides);

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('has a default for every key', () => {
    const config = load('');
    expect(config.listen).toBe('/run/berth/berth.sock');
    expect(config.root).toBe('/var/lib/berth');
    expect(config.state).toBe('/run/berth');
    expect(config.metrics).toEqual({ enabled: false, address: '127.0.0.1', port: 9090 });
    expect(config.network.plugin_dirs).toEqual(['/opt/cni/bin', '/usr/lib/cni']);
    expect(Object.keys(config.runtime.handlers).sort()).toEqual(['berth', 'runc']);
  });

  it('a missing default file means defaults, a missing explicit file is an error', () => {
    expect(loadConfig({ path: '/nonexistent/berth.toml', explicit: false }).log_level).toBe('info');
    expect(configErrorOf(() => loadConfig({ path: '/nonexistent/berth.toml', explicit: true })).message).toMatch(
      /nonexistent\/berth.toml: cannot read config file/,
    );
  });

  it('file values override defaults and flags override the file', () => {
    const config = load('log_level = "warn"\n[metrics]\nport = 9100\n', ['--metrics-port', '9200', '--metrics']);
    expect(config.log_level).toBe('warn');
    expect(config.metrics.port).toBe(9200);
    expect(config.metrics.enabled).toBe(true);
  });

  it('merges berth.d/*.toml drop-ins over the file in lexical order, table by table, below the flags', () => {
    const file = configFile('log_level = "warn"\n[metrics]\nport = 9100\nenabled = true\n[runtime]\ncgroup_driver = "cgroupfs"\n');
    const dropIns = path.join(path.dirname(file), 'berth.d');
    fs.mkdirSync(dropIns);
    fs.writeFileSync(path.join(dropIns, '20-metrics.toml'), '[metrics]\nport = 9300\n');
    fs.writeFileSync(path.join(dropIns, '10-metrics.toml'), '[metrics]\nport = 9200\n');
    fs.writeFileSync(path.join(dropIns, '30-handler.toml'), '[runtime.handlers.crun]\nruntime_path = "/usr/bin/crun"\n');
    fs.writeFileSync(path.join(dropIns, 'README'), 'not a drop-in');
    const config = loadConfig({ path: file, explicit: true }, parseArgs(['--log-level', 'debug']).overrides);
    expect(config.log_level).toBe('debug');
    expect(config.metrics).toEqual({ enabled: true, address: '127.0.0.1', port: 9300 });
    expect(Object.keys(config.runtime.handlers).sort()).toEqual(['berth', 'crun', 'runc']);
    fs.writeFileSync(path.join(dropIns, '40-bad.toml'), '[runtime]\ncgroup_driver = "cgroupsv3"\n');
    expect(configErrorOf(() => loadConfig({ path: file, explicit: true })).message).toMatch(/berth\.d\/40-bad\.toml: runtime\.cgroup_driver/);
  });

  it('refuses an unknown key, naming it', () => {
    expect(configErrorOf(() => load('[metrics]\nenable = true\n')).message).toMatch(/metrics\.enable: unknown key/);
    expect(configErrorOf(() => load('colour = "red"\n')).message).toMatch(/colour: unknown key/);
  });

  it('refuses a wrong type, naming the key', () => {
    expect(configErrorOf(() => load('[metrics]\nport = "abc"\n')).message).toMatch(
      /metrics\.port: expected an integer, got "abc"/,
    );
    expect(configErrorOf(() => load('[network]\nplugin_dirs = "/opt/cni/bin"\n')).message).toMatch(
      /network\.plugin_dirs: expected an array of strings/,
    );
    expect(configErrorOf(() => load('metrics = 5\n')).message).toMatch(/metrics: expected a table/);
  });

  it('refuses a bad value, naming the key', () => {
    expect(configErrorOf(() => load('log_level = "loud"\n')).message).toMatch(/log_level: expected one of "trace"/);
    expect(configErrorOf(() => load('[metrics]\nport = 70000\n')).message).toMatch(/metrics\.port: expected an integer from 0 to 65535/);
    expect(configErrorOf(() => load('root = "relative/dir"\n')).message).toMatch(/root: expected an absolute path/);
    expect(configErrorOf(() => load('[runtime]\ndefault_handler = "kata"\n')).message).toMatch(
      /runtime\.default_handler: "kata" is not a configured handler/,
    );
  });

  it('names the file and line of a TOML syntax error', () => {
    expect(configErrorOf(() => load('listen = \n')).message).toMatch(/berth\.toml: line 1/);
  });

  it('refuses a bad flag value, naming the flag', () => {
    expect(configErrorOf(() => load('', ['--metrics-port', 'x'])).message).toMatch(/--metrics-port: expected an integer/);
    expect(configErrorOf(() => load('', ['--log-level=shout'])).message).toMatch(/--log-level: expected one of/);
  });

  it('refuses unknown flags and flags without a value', () => {
    expect(() => parseArgs(['--nope'])).toThrow(UsageError);
    expect(() => parseArgs(['--root'])).toThrow(/--root needs a value/);
  });

  it('accepts configured handlers and validates their names and paths', () => {
    const config = load('[runtime.handlers.crun]\nruntime_path = "/usr/bin/crun"\n');
    expect(config.runtime.handlers.crun).toEqual({ runtime_path: '/usr/bin/crun', runtime_root: '' });
    // Handlers given in the file add to the defaults.
    expect(Object.keys(config.runtime.handlers).sort()).toEqual(['berth', 'crun', 'runc']);
    expect(() => load('[runtime]\ndefault_handler = "crun"\n[runtime.handlers.crun]\nruntime_path = "crun"\n')).toThrow(
      /runtime\.handlers\.crun\.runtime_path: expected "builtin" or an absolute path/,
    );
  });

  it('prints commented TOML that parses back to the same config', () => {
    const config = load('[metrics]\nenabled = true\n[runtime.handlers.crun]\nruntime_path = "/usr/bin/crun"\n', [
      '--root',
      '/srv/berth',
    ]);
    const text = printConfig(configSchema, config);
    expect(text).toMatch(/^# Unix socket the CRI gRPC API is served on\.$/m);
    expect(resolveTable(configSchema, parseToml(text))).toEqual(config);
  });
});
