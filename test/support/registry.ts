// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, a free port,
// storage in a fresh temp dir, optional htpasswd basic auth (bcrypt, from apache2-utils' htpasswd),
// optional TLS. It never binds anything but loopback: the config's only listener is 127.0.0.1:PORT,
// the debug server stays off (no http.debug in the config, and no REGISTRY_* variable reaches the
// process to turn it on), and after start-up the harness checks the process's listening sockets.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface RegistryOptions {
  auth?: { username: string; password: string };
  /** Serve HTTPS with a fresh self-signed CA; its PEM is written to <dir>/ca.pem. */
  tls?: boolean;
  /** Serve the storage of another test registry (e.g. push over HTTP, pull over HTTPS). */
  dataDir?: string;
}

export interface TestRegistry {
  /** host:port, as used in image references. */
  host: string;
  /** http://host:port (https:// with tls). */
  url: string;
  /** The registry's temp dir: config.yml, registry.log, htpasswd, data/ (its storage), certificates. */
  dir: string;
  pid: number;
  /** Kills the registry by its pid and removes its temp dir. */
  stop(): Promise<void>;
}

/** A CA and a server certificate for 127.0.0.1, made with openssl. */
function makeCertificates(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=berth test CA', '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.pem'));
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'server.key'), '-out', path.join(dir, 'server.csr'));
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', path.join(dir, 'server.csr'), '-CA', path.join(dir, 'ca.pem'), '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial', '-days', '1', '-extfile', path.join(dir, 'san.ext'), '-out', path.join(dir, 'server.pem'));
}

/** A bcrypt htpasswd line, as docker-registry's htpasswd auth requires (it accepts bcrypt only). */
function htpasswdLine(username: string, password: string): string {
  try {
    return execFileSync('htpasswd', ['-Bbn', username, password], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`htpasswd failed (install Debian's apache2-utils): ${(err as Error).message}`);
  }
}

function configYaml(dir: string, port: number, opts: { htpasswd?: string; tls?: boolean; dataDir?: string }): string {
  const auth = opts.htpasswd ? `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${opts.htpasswd}\n` : '';
  const tlsBlock = opts.tls ? `  tls:\n    certificate: ${path.join(dir, 'server.pem')}\n    key: ${path.join(dir, 'server.key')}\n` : '';
  return `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${opts.dataDir ?? path.join(dir, 'data')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  net: tcp
  secret: ${randomBytes(16).toString('hex')}
${tlsBlock}${auth}`;
}

function logTail(logFile: string, lines = 20): string {
  try {
    return fs.readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The local addresses (ip:port) of the TCP sockets a process listens on, from /proc. */
export function listeningAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const out: string[] = [];
  for (const [file, v6] of [['tcp', false], ['tcp6', true]] as const) {
    let table: string;
    try {
      table = fs.readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue; // 0A: LISTEN
      const [hexAddr, hexPort] = f[1].split(':');
      out.push(`${v6 ? ipv6(hexAddr) : ipv4(hexAddr)}:${parseInt(hexPort, 16)}`);
    }
  }
  return out;
}

function ipv4(hex: string): string {
  const n = Buffer.from(hex, 'hex');
  return [n[3], n[2], n[1], n[0]].join('.');
}

function ipv6(hex: string): string {
  const words = Buffer.from(hex, 'hex');
  const b = Buffer.alloc(16);
  for (let i = 0; i < 16; i += 4) b.writeUInt32BE(words.readUInt32LE(i), i);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return `[${groups.join(':')}]`;
}

type Started = { up: true } | { up: false; reason: string; portInUse: boolean };

async function waitUp(port: number, child: ChildProcess, logFile: string, tls: boolean): Promise<Started> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = logTail(logFile);
      return { up: false, reason: `exited (${child.exitCode ?? child.signalCode})`, portInUse: /address already in use/.test(log) };
    }
    if (tls) {
      // Plain fetch would refuse the self-signed certificate: a TCP connect is enough to know it is up.
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.setTimeout(1_000, () => {
          s.destroy();
          resolve(false);
        });
        s.on('error', () => resolve(false));
      });
      if (up) return { up: true };
    } else {
      try {
        // Bounded: something else holding the port may accept and never answer.
        const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.status === 200 || res.status === 401) return { up: true };
      } catch {
        // not listening yet
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { up: false, reason: 'did not answer GET /v2/ within 15 s', portInUse: false };
}

/** The environment for the registry: ours minus every REGISTRY_* and OTEL_* variable (they override its config). */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(REGISTRY_|OTEL_)/.test(k)) env[k] = v;
  return env;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 5_000);
  await exited;
  clearTimeout(timer);
}

class PortInUseError extends Error {}

/** Starts a registry on a free loopback port (retrying on another port if that one was taken meanwhile). */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRegistryOn(await freePort(), opts);
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= 3) throw err;
    }
  }
}

/** A registry on a given loopback address (host:port), e.g. 127.0.0.1:5000 for the benchmark. */
export async function startRegistryAt(hostPort: string, opts: RegistryOptions = {}): Promise<TestRegistry> {
  const [host, port] = hostPort.split(':');
  if (host !== '127.0.0.1' || !port) throw new Error(`registries run on 127.0.0.1 only, not ${hostPort}`);
  return startRegistryOn(Number(port), opts);
}

async function startRegistryOn(port: number, opts: RegistryOptions): Promise<TestRegistry> {
  if (!fs.existsSync(REGISTRY_BINARY)) throw new Error(`${REGISTRY_BINARY} is missing: install Debian's docker-registry package`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-registry-'));
  let child: ChildProcess | undefined;
  try {
    let htpasswd: string | undefined;
    if (opts.auth) {
      htpasswd = path.join(dir, 'htpasswd');
      fs.writeFileSync(htpasswd, htpasswdLine(opts.auth.username, opts.auth.password), { mode: 0o600 });
    }
    if (opts.tls) makeCertificates(dir);
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(config, configYaml(dir, port, { htpasswd, tls: opts.tls, dataDir: opts.dataDir }));
    const logFile = path.join(dir, 'registry.log');
    const log = fs.openSync(logFile, 'a');
    // setpriv --pdeathsig: the registry dies with the process that started it, even one killed outright.
    // setpriv execs the registry, so the pid is the registry's.
    const setpriv = fs.existsSync('/usr/bin/setpriv');
    const [cmd, args] = setpriv
      ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', REGISTRY_BINARY, 'serve', config]]
      : [REGISTRY_BINARY, ['serve', config]];
    child = spawn(cmd, args, { stdio: ['ignore', log, log], env: registryEnv() });
    fs.closeSync(log);
    child.on('error', () => undefined);
    const started = await waitUp(port, child, logFile, opts.tls ?? false);
    if (!started.up) {
      const message = `docker-registry at 127.0.0.1:${port} ${started.reason}; the end of its log:\n${logTail(logFile)}`;
      throw started.portInUse ? new PortInUseError(message) : new Error(message);
    }
    const pid = child.pid as number;
    const exposed = listeningAddresses(pid).filter((a) => !a.startsWith('127.0.0.1:'));
    if (exposed.length) throw new Error(`docker-registry listens beyond loopback: ${exposed.join(', ')}`);
    const running = child;
    return {
      host: `127.0.0.1:${port}`,
      url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
      dir,
      pid,
      async stop() {
        await kill(running);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child) await kill(child);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
