// berthd as a process: the socket, Version and Status, UNIMPLEMENTED, config errors, metrics, shutdown.
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parse as parseToml } from 'smol-toml';
import { prefixed, rawGrpc } from '../support/grpc-raw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveTable } from '../../src/config/schema-kit';
import { configSchema } from '../../src/config/schema';
import { packageJson, packageRoot } from '../../src/util/package-root';
import { exitOf, runBerthd, startBerthd, type BerthdHandle } from '../support/berthd';
import { until } from '../support/until';

/** A unary gRPC call over raw HTTP/2, so a test controls the :authority and when the request ends. */
function rawGrpcCall(socket: string, method: string, authority: string) {
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
  const req = session.request({
    ':method': 'POST',
    ':path': method,
    ':authority': authority,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  const result = new Promise<{ status: string | undefined; body: string }>((resolve, reject) => {
    let status: string | undefined;
    req.on('trailers', (t) => (status = t['grpc-status'] as string | undefined));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('latin1') }));
    req.on('error', reject);
  }).finally(() => session.close());
  // One uncompressed, empty request message; ends the request.
  const send = () => req.end(Buffer.from([0, 0, 0, 0, 0]));
  // Once the request's headers are out, a PING: its answer comes after the server has read every
  // frame sent before it, so then the server has the call (as a stream still open).
  const reached = new Promise<void>((resolve, reject) => req.once('ready', () => session.ping((err) => (err ? reject(err) : resolve()))));
  return { send, result, reached };
}

describe('berthd serving', () => {
  let berthd: BerthdHandle;
  let cniDir: string;

  beforeAll(async () => {
    cniDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cni-'));
    berthd = await startBerthd({
      args: ['--metrics', '--metrics-port', '0', '--log-level', 'debug', '--cni-conf-dir', cniDir],
    });
  });

  afterAll(async () => {
    await berthd.cleanup();
    fs.rmSync(cniDir, { recursive: true, force: true });
  });

  it('answers Version with berth, its package version and API v1', async () => {
    const v = await berthd.client.runtime.Version({ version: 'v1' });
    expect(v).toEqual({
      version: '0.1.0',
      runtime_name: 'berth',
      runtime_version: packageJson().version,
      runtime_api_version: 'v1',
    });
  });

  it('creates the socket with mode 0660', () => {
    const stat = fs.statSync(berthd.socket);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o660);
  });

  it('reports RuntimeReady, and NetworkReady false until a CNI config appears', async () => {
    const before = await berthd.client.runtime.Status({});
    expect(before.status?.conditions).toEqual([
      { type: 'RuntimeReady', status: true, reason: '', message: '' },
      {
        type: 'NetworkReady',
        status: false,
        reason: 'NetworkPluginNotReady',
        message: expect.stringContaining(`no network config found in ${cniDir}`),
      },
    ]);
    fs.writeFileSync(
      path.join(cniDir, '10-test.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'test', plugins: [{ type: 'loopback' }] }),
    );
    // berthd learns of the change through an inotify watch on the dir: soon, not necessarily by the next call.
    const networkReady = async () => (await berthd.client.runtime.Status({})).status?.conditions.find((c) => c.type === 'NetworkReady')?.status === true;
    await until('NetworkReady after the config was written', networkReady);
    // And back: the config removed, the network is not ready again.
    fs.rmSync(path.join(cniDir, '10-test.conflist'));
    await until('NetworkReady false after the config was removed', async () => !(await networkReady()));
    fs.writeFileSync(
      path.join(cniDir, '10-test.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'test', plugins: [{ type: 'loopback' }] }),
    );
    await until('NetworkReady after the config came back', networkReady);
  });

  it('adds the effective config to a verbose Status and lists the runtime handlers', async () => {
    const terse = await berthd.client.runtime.Status({ verbose: false });
    expect(terse.info).toEqual({});
    const verbose = await berthd.client.runtime.Status({ verbose: true });
    const config = JSON.parse(verbose.info.config) as { listen: string; root: string };
    expect(config.listen).toBe(berthd.socket);
    expect(config.root).toBe(berthd.root);
    expect(verbose.runtime_handlers.map((h) => h.name)).toEqual(['', 'berth', 'runc']);
  });

  it('reports the cgroupfs driver in RuntimeConfig', async () => {
    const res = await berthd.client.runtime.RuntimeConfig({});
    expect(res.linux?.cgroup_driver).toBe('CGROUPFS');
  });

  it('answers UNIMPLEMENTED naming the method for a method it does not know', async () => {
    const answer = await rawGrpc(berthd.socket, '/runtime.v1.RuntimeService/NoSuchMethod', {}, prefixed(Buffer.alloc(0)));
    expect(answer).toMatchObject({ grpcStatus: String(grpc.status.UNIMPLEMENTED), message: expect.stringContaining('/runtime.v1.RuntimeService/NoSuchMethod') });
    // Every method of the CRI is served: an unknown container is NOT_FOUND, counted below.
    await expect(berthd.client.runtime.CheckpointContainer({ container_id: 'x' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('serves the RPC latency histogram at /metrics', async () => {
    await berthd.client.runtime.Version({});
    const line = berthd.output().split('\n').find((l) => l.includes('serving metrics'));
    const port = (JSON.parse(line ?? '{}') as { address?: { port: number } }).address?.port;
    expect(port).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/berth_grpc_request_duration_seconds_bucket\{le="0\.005",service="RuntimeService",method="Version",code="OK"\} \d+/);
    expect(text).toMatch(/berth_grpc_request_errors_total\{service="RuntimeService",method="CheckpointContainer",code="NOT_FOUND"\} 1/);
    expect(text).toMatch(/berth_process_resident_memory_bytes \d+/);
  });

  it('serves clients that send the socket path as :authority (gRPC-Go before 1.55: crictl, critest 1.26)', async () => {
    const call = rawGrpcCall(berthd.socket, '/runtime.v1.RuntimeService/Version', berthd.socket);
    call.send();
    const { status, body } = await call.result;
    expect(status).toBe('0');
    expect(body).toContain('berth');
  });

  it('logs each call with method, duration and code', () => {
    const calls = berthd
      .output()
      .split('\n')
      .filter((l) => l.includes('"rpc":"RuntimeConfig"'))
      .map((l) => JSON.parse(l) as { code: string; ms: number });
    expect(calls[0]).toMatchObject({ code: 'OK', ms: expect.any(Number) });
  });
});

describe('berthd start-up and shutdown', () => {
  it('replaces a stale socket, and SIGTERM removes the socket and exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-'));
    const first = await startBerthd({ dir });
    await first.stop('SIGKILL');
    first.client.close();
    expect(fs.existsSync(first.socket)).toBe(true); // a killed berthd leaves its socket behind
    const second = await startBerthd({ dir });
    try {
      expect((await second.client.runtime.Version({})).runtime_name).toBe('berth');
      expect(await second.stop('SIGTERM')).toBe(0);
      expect(fs.existsSync(second.socket)).toBe(false);
      expect(second.output()).toMatch(/berthd stopped/);
    } finally {
      await second.cleanup();
    }
  });

  it('refuses to start on a socket another berthd serves', async () => {
    const first = await startBerthd();
    try {
      const res = await runBerthd(['--config', first.configPath, '--listen', first.socket, '--root', first.root, '--state', first.state, '--log-format', 'json']);
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain(`another process is already serving on ${first.socket}`);
      expect((await first.client.runtime.Version({})).runtime_name).toBe('berth');
    } finally {
      await first.cleanup();
    }
  });

  it("writes its state format, and refuses state a newer berth wrote, touching nothing", async () => {
    const first = await startBerthd();
    const formatFile = path.join(first.root, 'state-format');
    try {
      expect(JSON.parse(fs.readFileSync(formatFile, 'utf8'))).toEqual({ format: 1, writtenBy: `berth ${packageJson().version}` });
    } finally {
      await first.stop('SIGTERM');
    }
    const args = ['--config', first.configPath, '--listen', first.socket, '--root', first.root, '--state', first.state, '--log-format', 'json'];
    try {
      // What a downgrade past a format change finds.
      const newer = '{"format":2,"writtenBy":"berth 9.0.0"}\n';
      fs.writeFileSync(formatFile, newer);
      const refused = await runBerthd(args);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`the state in ${first.root} has format 2, written by berth 9.0.0; this berth (${packageJson().version}) reads formats up to 1`);
      expect(fs.readFileSync(formatFile, 'utf8')).toBe(newer);
      expect(fs.existsSync(first.socket)).toBe(false);
      fs.writeFileSync(formatFile, 'garbage');
      expect((await runBerthd(args)).stderr).toContain('does not hold a state format');
      // State from before the file existed is format 1, and gets the file.
      fs.rmSync(formatFile);
      const again = await startBerthd({ dir: first.dir });
      expect(JSON.parse(fs.readFileSync(formatFile, 'utf8')).format).toBe(1);
      await again.stop('SIGTERM');
    } finally {
      await first.cleanup();
    }
  });

  it('lets a call in flight finish on SIGTERM, then exits 0', async () => {
    const berthd = await startBerthd();
    try {
      // The call has reached berthd but its request has not ended when the signal arrives.
      const call = rawGrpcCall(berthd.socket, '/runtime.v1.RuntimeService/Status', 'localhost');
      await call.reached;
      berthd.process.kill('SIGTERM');
      await expect.poll(() => berthd.output()).toMatch(/berthd shutting down/);
      expect(fs.existsSync(berthd.socket)).toBe(false); // no new connections once stopping
      call.send();
      await expect(call.result).resolves.toMatchObject({ status: '0' });
      expect(await exitOf(berthd.process)).toBe(0);
    } finally {
      await berthd.cleanup();
    }
  });

  // (Version over the CRI reports the same version: "answers Version" above.)
  it("prints its version, the commit dist/ was built from, its Node and each helper's version", async () => {
    const res = await runBerthd(['version']);
    expect(res.code).toBe(0);
    const pkg = packageJson() as unknown as { version: string; engines: { node: string } };
    const built = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'dist', 'build-info.json'), 'utf8')) as { commit: string; dirty: boolean };
    expect(built.commit).toMatch(/^[0-9a-f]{40}$|^unknown$/);
    expect(res.stdout.split('\n')).toEqual([
      `berth ${pkg.version}`,
      `commit: ${built.commit}${built.dirty ? ' (with uncommitted changes)' : ''}`,
      // berth runs on the Node it pins, whatever the machine has.
      `node: v${pkg.engines.node}`,
      ...['runtime', 'monitor', 'init', 'pinns', 'unpack'].map((h) => `berth-${h}: ${pkg.version}`),
      '',
    ]);
  });

  it('stops with a non-zero exit and names the key for a bad config file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-'));
    try {
      fs.writeFileSync(path.join(dir, 'bad.toml'), '[metrics]\nport = "ninety"\n');
      const res = await runBerthd(['--config', path.join(dir, 'bad.toml'), '--state', dir]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/invalid configuration: .*bad\.toml: metrics\.port: expected an integer, got "ninety"/);
      fs.writeFileSync(path.join(dir, 'unknown.toml'), 'listen_address = "/x"\n');
      const unknown = await runBerthd(['--config', path.join(dir, 'unknown.toml')]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/listen_address: unknown key/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops with a non-zero exit and names the flag for a bad flag', async () => {
    const bad = await runBerthd(['--config', '/dev/null', '--log-level', 'chatty']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--log-level: expected one of "trace"/);
    const unknown = await runBerthd(['--config', '/dev/null', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown flag --colour/);
  });

  it.skipIf(fs.existsSync('/run/systemd/system'))('refuses the systemd cgroup driver on a host whose init is not systemd, saying why', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-systemd-'));
    try {
      const res = await runBerthd(['--config', '/dev/null', '--cgroup-driver', 'systemd', '--listen', path.join(dir, 's.sock'), '--root', path.join(dir, 'root'), '--state', path.join(dir, 'state'), '--log-format', 'json']);
      expect(res.code).toBe(1);
      expect(res.stdout + res.stderr).toMatch(/cgroup_driver = \\"systemd\\" needs systemd as the init system/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts with an empty capture dir for helpers' output (a crash mid-helper leaves files there)", async () => {
    const first = await startBerthd();
    try {
      await first.stop('SIGKILL');
      const left = path.join(first.state, 'cmd', '.cmd-0123456789ab.out');
      fs.writeFileSync(left, 'output of a helper berthd never read');
      const again = await startBerthd({ dir: first.dir });
      expect(fs.readdirSync(path.join(first.state, 'cmd'))).toEqual([]);
      await again.stop('SIGKILL');
    } finally {
      await first.cleanup();
    }
  });

  it('prints its effective config as commented TOML that parses back to the same config', async () => {
    const res = await runBerthd(['config', '--config', '/dev/null', '--root', '/srv/berth', '--metrics']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^# Persistent data/m);
    const parsed = resolveTable(configSchema, parseToml(res.stdout));
    expect(parsed.root).toBe('/srv/berth');
    expect(parsed.metrics.enabled).toBe(true);
    const again = await runBerthd(['config', '--config', '/dev/null', '--root', '/srv/berth', '--metrics']);
    expect(again.stdout).toBe(res.stdout);
  });
});
