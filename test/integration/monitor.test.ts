// berth-monitor: the CRI log format, exit status files, and a real OCI container run by runc through it,
// from a spec built by berth's CRI-to-OCI translation over a busybox layer berth unpacked.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { busyboxEntries } from '../../hack/images/busybox';
import { buildOciSpec, type ContainerRequest } from '../../src/container/oci-spec';
import { unpackLayer } from '../../src/image/unpack/unpack-layer';
import { packageRoot } from '../../src/util/package-root';
import { tar } from '../support/oci/tar';

const MONITOR = path.join(packageRoot(), 'native', 'bin', 'berth-monitor');
const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (P|F) (.*)$/;

async function waitFor(file: string, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8');
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${file} did not appear`);
}

describe('berth-monitor', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-monitor-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const monitor = (...cmd: string[]) =>
    execFileSync(MONITOR, ['--log', path.join(dir, 'log'), '--exit-file', path.join(dir, 'exit'), '--pid-file', path.join(dir, 'pid'), '--', ...cmd]);

  it('writes stdout and stderr as CRI log records and records the exit code', () => {
    monitor('/bin/sh', '-c', 'echo hello; echo oops >&2; printf tail; exit 3');
    const records = fs.readFileSync(path.join(dir, 'log'), 'utf8').trimEnd().split('\n').map((l) => LINE.exec(l)?.slice(1));
    expect(records).toEqual(expect.arrayContaining([['stdout', 'F', 'hello'], ['stderr', 'F', 'oops'], ['stdout', 'F', 'tail']]));
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'exit'), 'utf8'))).toMatchObject({ exitCode: 3, signal: 0 });
  });

  it('splits long lines into partial records and reports a kill by signal', () => {
    monitor('/bin/sh', '-c', 'head -c 40000 /dev/zero | tr "\\0" a; echo; kill -9 $$');
    const records = fs.readFileSync(path.join(dir, 'log'), 'utf8').trimEnd().split('\n').map((l) => LINE.exec(l));
    expect(records.map((r) => r?.[2])).toEqual(['P', 'P', 'F']);
    expect(records.map((r) => r?.[3].length).reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBe(40000);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'exit'), 'utf8'))).toMatchObject({ exitCode: 137, signal: 9 });
  });

  it.runIf(fs.existsSync('/usr/bin/runc'))('watches a container runc creates from a spec berth built', async () => {
    const rootfs = path.join(dir, 'bundle', 'rootfs');
    fs.mkdirSync(rootfs, { recursive: true });
    await unpackLayer(Readable.from([tar(busyboxEntries())]), 'application/vnd.oci.image.layer.v1.tar', rootfs, {
      limits: { maxBytes: 1 << 30, maxEntries: 10_000 },
    });
    for (const f of ['hostname', 'hosts', 'resolv.conf']) fs.writeFileSync(path.join(dir, f), f === 'hostname' ? 'box\n' : '');
    const req: ContainerRequest = {
      command: ['sh', '-c'],
      args: ['echo "uid=$(id -u) host=$(hostname)"; cat /proc/self/status | grep CapEff; exit 7'],
      workingDir: '',
      env: [['GREETING', 'hi']],
      mounts: [],
      tty: false,
      stdin: false,
      privileged: false,
      capabilities: { add: [], drop: ['ALL'] },
      noNewPrivs: true,
      readonlyRootfs: true,
      seccomp: { kind: 'runtime-default' },
      pidNamespace: 'container',
      resources: { memoryLimit: 64 << 20 },
    };
    const id = `berth-monitor-test-${process.pid}`;
    const spec = buildOciSpec(
      req,
      { Cmd: ['sh'], Env: ['PATH=/bin'] },
      {
        hostname: 'box',
        files: { hostname: path.join(dir, 'hostname'), hosts: path.join(dir, 'hosts'), resolvConf: path.join(dir, 'resolv.conf') },
        cgroupsPath: `/berth-test/${id}`,
        minOomScoreAdj: 0,
      },
      { uid: 1000, gid: 1000, additionalGids: [], home: '/home/berth' },
      rootfs,
    );
    // Without pod namespaces to join, the container gets new ones of its own.
    spec.linux.namespaces.push({ type: 'network' }, { type: 'ipc' }, { type: 'uts' });
    fs.writeFileSync(path.join(dir, 'bundle', 'config.json'), JSON.stringify(spec));
    const runcRoot = path.join(dir, 'runc');
    const containerPid = path.join(dir, 'container.pid');
    const child = spawn(
      MONITOR,
      ['--log', path.join(dir, 'log'), '--exit-file', path.join(dir, 'exit'), '--pid-file', path.join(dir, 'pid'), '--container-pid-file', containerPid,
        '--', 'runc', '--root', runcRoot, 'create', '--bundle', path.join(dir, 'bundle'), '--pid-file', containerPid, id],
      { stdio: 'ignore' },
    );
    try {
      const pid = Number(await waitFor(path.join(dir, 'pid')));
      expect(pid).toBeGreaterThan(1);
      execFileSync('runc', ['--root', runcRoot, 'start', id]);
      const exit = JSON.parse(await waitFor(path.join(dir, 'exit'))) as { exitCode: number };
      expect(exit.exitCode).toBe(7);
      const log = fs.readFileSync(path.join(dir, 'log'), 'utf8');
      expect(log).toMatch(/ stdout F uid=1000 host=box$/m);
      expect(log).toMatch(/ stdout F CapEff:\s+0000000000000000$/m);
    } finally {
      child.kill('SIGKILL');
      try {
        execFileSync('runc', ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
      } catch {
        // already gone
      }
      for (const root of fs.readdirSync('/sys/fs/cgroup')) {
        for (const d of [path.join('/sys/fs/cgroup', root, 'berth-test', id), path.join('/sys/fs/cgroup', root, 'berth-test')]) {
          try {
            fs.rmdirSync(d);
          } catch {
            // gone already, or not in this hierarchy
          }
        }
      }
    }
  }, 60_000);
});
