// A real OCI registry for tests: Debian's docker-registry on 127.0.0.1, a free port, temporary storage,
// optional htpasswd basic auth. Never binds anything but loopback.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

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
  url: string;
  dir: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A CA and a server certificate for 127.0.0.1, made with openssl. */
function makeCertificates(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=berth test CA', '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.pem'));
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'server.key'), '-out', path.join(dir, 'server.csr'));
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', path.join(dir, 'server.csr'), '-CA', path.join(dir, 'ca.pem'), '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial', '-days', '1', '-extfile', path.join(dir, 'san.ext'), '-out', path.join(dir, 'server.pem'));
}

function configYaml(dir: string, port: number, htpasswd?: string, tls?: boolean, dataDir?: string): string {
  const auth = htpasswd ? `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${htpasswd}\n` : '';
  const tlsBlock = tls ? `  tls:\n    certificate: ${path.join(dir, 'server.pem')}\n    key: ${path.join(dir, 'server.key')}\n` : '';
  return `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${dataDir ?? path.join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${tlsBlock}${auth}`;
}

async function waitUp(url: string, child: ChildProcess, logFile: string, tls = false): Promise<void> {
  const deadline = Date.now() + 15_000;
  const port = Number(new URL(url).port);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (tls) {
      // Plain fetch would refuse the self-signed certificate: a TCP connect is enough to know it is up.
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (up) return;
    } else {
      try {
        const res = await fetch(`${url}/v2/`);
        if (res.status === 200 || res.status === 401) return;
      } catch {
        // not listening yet
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
  child.kill('SIGKILL');
  throw new Error(`docker-registry did not start at ${url}:\n${log}`);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  return startRegistryOn(await freePort(), opts);
}

/** A registry on a given loopback address (host:port), e.g. 127.0.0.1:5000 for the benchmark. */
export async function startRegistryAt(hostPort: string, opts: RegistryOptions = {}): Promise<TestRegistry> {
  const [host, port] = hostPort.split(':');
  if (host !== '127.0.0.1' || !port) throw new Error(`registries run on 127.0.0.1 only, not ${hostPort}`);
  return startRegistryOn(Number(port), opts);
}

async function startRegistryOn(port: number, opts: RegistryOptions): Promise<TestRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-registry-'));
  let htpasswd: string | undefined;
  if (opts.auth) {
    htpasswd = path.join(dir, 'htpasswd');
    const line = execFileSync('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password], { encoding: 'utf8' });
    fs.writeFileSync(htpasswd, line);
  }
  const config = path.join(dir, 'config.yml');
  if (opts.tls) makeCertificates(dir);
  fs.writeFileSync(config, configYaml(dir, port, htpasswd, opts.tls, opts.dataDir));
  const logFile = path.join(dir, 'registry.log');
  const log = fs.openSync(logFile, 'a');
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  await waitUp(opts.tls ? `http://127.0.0.1:${port}` : url, child, logFile, opts.tls);
  return {
    host: `127.0.0.1:${port}`,
    url,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
