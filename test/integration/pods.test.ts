// Pod sandboxes against the real kernel and Debian's CNI plugins.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { cgroupLayout } from '../../src/cgroups/layout';
import { startBerthd, type BerthdHandle } from '../support/berthd';

const tag = `${process.pid % 10000}`;
const bridge = `bpod${tag}`;
const SUBNET = '10.124.0';

function podConfig(name: string, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: '/tmp',
    labels: { app: name, tier: 'test' },
    ...extra,
  };
}

const nsenter = (netns: string, ...cmd: string[]) =>
  execFileSync('nsenter', [`--net=${netns}`, '--', ...cmd], { encoding: 'utf8' }).trim();

/** Removes every sandbox of a test daemon, stops it, and deletes the test bridge. */
async function tearDown(berthd: BerthdHandle | undefined, bridgeName: string): Promise<void> {
  try {
    if (berthd) {
      for (const p of (await berthd.client.runtime.ListPodSandbox({})).items) await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: p.id });
      await berthd.cleanup();
    }
  } finally {
    // Even when a removal failed: a bridge left behind keeps its route and breaks the next run's pings.
    try {
      execFileSync('ip', ['link', 'del', bridgeName]);
    } catch {
      // never created
    }
  }
}

describe('pod sandboxes', () => {
  let berthd: BerthdHandle;
  let dir: string;
  let cniDir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pods-'));
    cniDir = path.join(dir, 'cni');
    fs.mkdirSync(cniDir);
    fs.writeFileSync(
      path.join(cniDir, '10-test.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `pods${tag}`,
        plugins: [
          { type: 'bridge', bridge, isGateway: true, ipam: { type: 'host-local', dataDir: path.join(dir, 'ipam'), ranges: [[{ subnet: `${SUBNET}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] } },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    berthd = await startBerthd({ args: ['--cni-conf-dir', cniDir] });
  });

  afterAll(async () => {
    await tearDown(berthd, bridge);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const run = (config: PodSandboxConfig, runtime_handler = '') => berthd.client.runtime.RunPodSandbox({ config, runtime_handler });
  const status = (id: string, verbose = false) => berthd.client.runtime.PodSandboxStatus({ pod_sandbox_id: id, verbose });
  const netnsOf = async (id: string) => (JSON.parse((await status(id, true)).info.info) as { netns: string }).netns;

  it('gives a pod an address the host reaches, and two pods reach each other over the bridge', async () => {
    const a = (await run(podConfig('pod-a'))).pod_sandbox_id;
    const b = (await run(podConfig('pod-b'))).pod_sandbox_id;
    expect(a).toMatch(/^[a-f0-9]{64}$/);
    const ipA = (await status(a)).status?.network?.ip ?? '';
    const ipB = (await status(b)).status?.network?.ip ?? '';
    expect(ipA.startsWith(`${SUBNET}.`)).toBe(true);
    execFileSync('ping', ['-c', '1', '-W', '2', ipA]);
    nsenter(await netnsOf(a), 'ping', '-c', '1', '-W', '2', ipB);
    expect((await status(a)).status).toMatchObject({ state: 'SANDBOX_READY', labels: { app: 'pod-a', tier: 'test' }, metadata: { name: 'pod-a' } });
  });

  it('writes hostname, hosts and resolv.conf as configured, applies sysctls, and mounts a pod /dev/shm', async () => {
    const id = (
      await run(
        podConfig('files', {
          hostname: 'files-host',
          dns_config: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
          linux: { sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shm_rmid_forced': '1' } },
        }),
      )
    ).pod_sandbox_id;
    const info = JSON.parse((await status(id, true)).info.info) as { stateDir: string; netns: string; pins: { uts: string; ipc: string } };
    expect(fs.readFileSync(path.join(info.stateDir, 'hostname'), 'utf8')).toBe('files-host\n');
    expect(fs.readFileSync(path.join(info.stateDir, 'resolv.conf'), 'utf8')).toBe('search default.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
    expect(fs.readFileSync(path.join(info.stateDir, 'hosts'), 'utf8')).toMatch(new RegExp(`^${(await status(id)).status?.network?.ip}\\tfiles-host$`, 'm'));
    expect(execFileSync('nsenter', [`--uts=${info.pins.uts}`, 'hostname'], { encoding: 'utf8' }).trim()).toBe('files-host');
    expect(nsenter(info.netns, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start')).toBe('0');
    expect(execFileSync('nsenter', [`--ipc=${info.pins.ipc}`, 'cat', '/proc/sys/kernel/shm_rmid_forced'], { encoding: 'utf8' }).trim()).toBe('1');
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).toContain(path.join(info.stateDir, 'shm'));
  });

  it('runs a hostNetwork pod in the host network namespace, with the host name and no pod IP', async () => {
    const id = (
      await run(podConfig('hostnet', { hostname: '', linux: { security_context: { namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' } } } }))
    ).pod_sandbox_id;
    const s = await status(id, true);
    expect(s.status?.network?.ip).toBe('');
    expect(s.status?.linux?.namespaces?.options?.network).toBe('NODE');
    const info = JSON.parse(s.info.info) as { netns: string; stateDir: string };
    expect(info.netns).toBe('');
    expect(fs.readFileSync(path.join(info.stateDir, 'hostname'), 'utf8').trim()).toBe(os.hostname());
  });

  it('gives a pod with a shared PID namespace its own init, which stopping the pod ends', async () => {
    const id = (await run(podConfig('pidns', { linux: { security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } } }))).pod_sandbox_id;
    const info = JSON.parse((await status(id, true)).info.info) as { initPid: number; pins: { pid: string }; cgroup: string };
    expect(info.initPid).toBeGreaterThan(1);
    expect(fs.readFileSync(`/proc/${info.initPid}/comm`, 'utf8').trim()).toBe('berth-init');
    // A process joining the pod's PID namespace is PID 2 there: the init is PID 1.
    expect(execFileSync('nsenter', [`--pid=${info.pins.pid}`, '--', 'sh', '-c', 'echo $$'], { encoding: 'utf8' }).trim()).toBe('2');
    // The init sits in a leaf of its own below the pod cgroup, never in the pod cgroup itself (cgroup v2's
    // no-internal-processes rule would then stop its containers' cgroups from getting controllers).
    const controllerLines = (pid: number | 'self') => fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').filter((l) => /:(memory|pids|cpu)[,:]/.test(l));
    const initCgroups = controllerLines(info.initPid);
    // One line for each of these hierarchies the host has (three here; none on a pure v2 host, which this test does not cover).
    expect(initCgroups).toHaveLength(controllerLines('self').length);
    expect(initCgroups.length).toBeGreaterThan(0);
    for (const line of initCgroups) expect(line.endsWith(`:${info.cgroup}/${id}`)).toBe(true);
    await berthd.client.runtime.StopPodSandbox({ pod_sandbox_id: id });
    const stat = fs.existsSync(`/proc/${info.initPid}/stat`) ? fs.readFileSync(`/proc/${info.initPid}/stat`, 'utf8') : '';
    expect(stat === '' || / [ZX] /.test(stat.slice(stat.lastIndexOf(')')))).toBe(true);
    const hostPid = (await run(podConfig('hostpid', { linux: { security_context: { namespace_options: { network: 'POD', pid: 'NODE', ipc: 'POD' } } } }))).pod_sandbox_id;
    expect((JSON.parse((await status(hostPid, true)).info.info) as { initPid: number }).initPid).toBe(0);
  });

  it('answers a retried RunPodSandbox with the first sandbox, and refuses the name for a different one', async () => {
    const config = podConfig('retry');
    // A retry that arrives while the first call is still working joins it.
    const [first, concurrent] = (await Promise.all([run(config), run(config)])).map((r) => r.pod_sandbox_id);
    expect(concurrent).toBe(first);
    expect((await run(config)).pod_sandbox_id).toBe(first);
    await expect(run({ ...config, labels: { other: 'x' } })).rejects.toMatchObject({
      code: grpc.status.ALREADY_EXISTS,
      details: expect.stringContaining(`k8s_POD_retry_default_uid-retry_0 is already used by sandbox ${first}`),
    });
  });

  it('refuses bad configs with clear errors and leaves nothing behind', async () => {
    const before = fs.readdirSync(path.join(berthd.state, 'pods')).length;
    await expect(run(podConfig(''))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('metadata.name is empty') });
    await expect(run(podConfig('bad-sysctl', { linux: { sysctls: { 'kernel.hostname': 'x' } } }))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('kernel.hostname is not namespaced'),
    });
    await expect(run(podConfig('bad-value', { linux: { sysctls: { 'net.ipv4.ip_unprivileged_port_start': 'lots' } } }))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('sysctl net.ipv4.ip_unprivileged_port_start=lots'),
    });
    await expect(run(podConfig('bad-handler'), 'kata')).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('unknown runtime handler "kata"') });
    expect(fs.readdirSync(path.join(berthd.state, 'pods')).length).toBe(before);
    const names = (await berthd.client.runtime.ListPodSandbox({})).items.map((p) => p.metadata?.name);
    expect(names).not.toContain('bad-value');
  });

  it('stops and removes idempotently, and answers NOT_FOUND for status of an unknown sandbox', async () => {
    const id = (await run(podConfig('lifecycle'))).pod_sandbox_id;
    await berthd.client.runtime.StopPodSandbox({ pod_sandbox_id: id });
    await berthd.client.runtime.StopPodSandbox({ pod_sandbox_id: id });
    expect((await status(id)).status?.state).toBe('SANDBOX_NOTREADY');
    expect((await status(id)).status?.network?.ip).toBe('');
    await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: id });
    await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: id });
    await berthd.client.runtime.StopPodSandbox({ pod_sandbox_id: 'f'.repeat(64) });
    await expect(status(id)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('filters the list by id prefix, state and labels', async () => {
    const id = (await run(podConfig('listed', { labels: { app: 'listed', tier: 'x' } }))).pod_sandbox_id;
    const list = (filter: object) => berthd.client.runtime.ListPodSandbox({ filter }).then((r) => r.items.map((p) => p.id));
    expect(await list({ id: id.slice(0, 12) })).toEqual([id]);
    expect(await list({ label_selector: { app: 'listed' } })).toEqual([id]);
    expect(await list({ label_selector: { app: 'listed', tier: 'y' } })).toEqual([]);
    expect(await list({ state: { state: 'SANDBOX_READY' }, label_selector: { tier: 'x' } })).toEqual([id]);
    await berthd.client.runtime.StopPodSandbox({ pod_sandbox_id: id });
    expect(await list({ state: { state: 'SANDBOX_READY' }, label_selector: { tier: 'x' } })).toEqual([]);
    expect(await list({ state: { state: 'SANDBOX_NOTREADY' }, label_selector: { tier: 'x' } })).toEqual([id]);
  });

  it('keeps its sandboxes across a restart, and reports one whose init died meanwhile not ready', async () => {
    const victim = (await run(podConfig('victim'))).pod_sandbox_id;
    const ipFile = path.join(dir, 'ipam', `pods${tag}`, (await status(victim)).status?.network?.ip ?? '');
    const initPid = (JSON.parse((await status(victim, true)).info.info) as { initPid: number }).initPid;
    const before = (await berthd.client.runtime.ListPodSandbox({})).items.map((p) => [p.id, p.id === victim ? 'SANDBOX_NOTREADY' : p.state]).sort();
    berthd.client.close();
    await berthd.stop('SIGKILL');
    process.kill(initPid, 'SIGKILL');
    berthd = await startBerthd({ dir: berthd.dir, args: ['--cni-conf-dir', cniDir] });
    const after = (await berthd.client.runtime.ListPodSandbox({})).items.map((p) => [p.id, p.state]).sort();
    expect(after).toEqual(before);
    // Found not ready, its network is still set up: the kubelet's StopPodSandbox tears it down (CNI DEL frees
    // the address), however often it has been stopped before... and only then is a repeated stop a no-op.
    expect(fs.existsSync(ipFile)).toBe(true);
    await berthd.client.runtime.StopPodSandbox({ pod_sandbox_id: victim });
    expect(fs.existsSync(ipFile)).toBe(false);
    await berthd.client.runtime.StopPodSandbox({ pod_sandbox_id: victim });
    expect((await status(victim)).status?.state).toBe('SANDBOX_NOTREADY');
  });

  it('leaks nothing over many run/stop/remove cycles: netns pins, mounts, veths, IPs, cgroups, fds', async () => {
    const cycles = Number(process.env.BERTH_LEAK_CYCLES ?? 500);
    const fdCount = () => fs.readdirSync(`/proc/${berthd.process.pid}/fd`).length;
    // Live inits of this daemon's pods (their command line names its state dir).
    const inits = () =>
      fs.readdirSync('/proc').filter((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
          const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
          return st.includes('(berth-init)') && !/ [ZX] /.test(st.slice(st.lastIndexOf(')'))) && cmdline.includes(berthd.state);
        } catch {
          return false;
        }
      }).length;
    const veths = () => execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
    const mounts = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(berthd.state)).length;
    const ipamFiles = () => fs.readdirSync(path.join(dir, 'ipam', `pods${tag}`)).filter((f) => f.startsWith(SUBNET)).length;
    // Other test files' pods come and go under /berth meanwhile: this test checks its own pods' cgroups.
    const cgroupRoot = path.join(cgroupLayout().v1[0] ?? cgroupLayout().unified ?? '', 'berth');
    const ids: string[] = [];
    // Warm up once so lazily opened fds (logs, sockets) are counted in the baseline.
    const warm = (await run(podConfig('leak-warm'))).pod_sandbox_id;
    await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: warm });
    const base = { fds: fdCount(), veths: veths(), mounts: mounts(), ips: ipamFiles(), inits: inits() };
    for (let i = 0; i < cycles; i++) {
      const id = (await run(podConfig(`leak-${i}`))).pod_sandbox_id;
      ids.push(id);
      expect(fs.existsSync(path.join(cgroupRoot, id))).toBe(true);
      // Where the pins live (so that finding none there at the end means something).
      if (i === 0) for (const kind of ['net', 'ipc', 'uts']) expect(fs.existsSync(path.join(berthd.state, 'ns', kind, id))).toBe(true);
      await berthd.client.runtime.StopPodSandbox({ pod_sandbox_id: id });
      await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: id });
    }
    expect({ fds: fdCount(), veths: veths(), mounts: mounts(), ips: ipamFiles(), inits: inits() }).toEqual(base);
    expect(ids.filter((id) => fs.existsSync(path.join(cgroupRoot, id)))).toEqual([]);
    for (const kind of ['net', 'ipc', 'uts']) {
      const live = (await berthd.client.runtime.ListPodSandbox({})).items.map((p) => p.id);
      const pins = fs.existsSync(path.join(berthd.state, 'ns', kind)) ? fs.readdirSync(path.join(berthd.state, 'ns', kind)) : [];
      expect(pins.filter((p) => !live.includes(p))).toEqual([]);
    }
  }, 300_000);
});

describe('pod sandboxes when the network is missing or broken', () => {
  let berthd: BerthdHandle;
  let cniDir: string;

  beforeAll(async () => {
    cniDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cni-broken-'));
    berthd = await startBerthd({ args: ['--cni-conf-dir', cniDir] });
  });

  afterAll(async () => {
    await berthd?.cleanup();
    fs.rmSync(cniDir, { recursive: true, force: true });
  });

  const leftovers = () => ({
    // The intent record written before the first side effect goes with the rollback.
    records: fs.existsSync(path.join(berthd.root, 'pods')) ? fs.readdirSync(path.join(berthd.root, 'pods')) : [],
    pods: fs.existsSync(path.join(berthd.state, 'pods')) ? fs.readdirSync(path.join(berthd.state, 'pods')) : [],
    pins: ['net', 'ipc', 'uts'].flatMap((k) => (fs.existsSync(path.join(berthd.state, 'ns', k)) ? fs.readdirSync(path.join(berthd.state, 'ns', k)) : [])),
    mounts: fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(berthd.state)),
  });

  it('refuses with FAILED_PRECONDITION while no CNI network is configured, leaving nothing', async () => {
    await expect(berthd.client.runtime.RunPodSandbox({ config: podConfig('no-net') })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining('network not ready'),
    });
    expect(leftovers()).toEqual({ records: [], pods: [], pins: [], mounts: [] });
  });

  it('names a missing CNI plugin, and a failed RunPodSandbox leaves nothing behind', async () => {
    fs.writeFileSync(
      path.join(cniDir, '10-broken.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'broken', plugins: [{ type: 'loopback' }, { type: 'no-such-plugin' }] }),
    );
    await expect(berthd.client.runtime.RunPodSandbox({ config: podConfig('broken-net') })).rejects.toMatchObject({
      details: expect.stringContaining('CNI plugin "no-such-plugin" not found'),
    });
    expect(leftovers()).toEqual({ records: [], pods: [], pins: [], mounts: [] });
    expect((await berthd.client.runtime.ListPodSandbox({})).items).toEqual([]);
  });
});

describe('pod bandwidth limits', () => {
  let berthd: BerthdHandle;
  let dir: string;
  const br = `bbw${tag}`;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bw-'));
    fs.mkdirSync(path.join(dir, 'cni'));
    fs.writeFileSync(
      path.join(dir, 'cni', '10-bw.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `bw${tag}`,
        plugins: [
          { type: 'bridge', bridge: br, isGateway: true, ipam: { type: 'host-local', dataDir: path.join(dir, 'ipam'), ranges: [[{ subnet: '10.125.0.0/24' }]] } },
          { type: 'bandwidth', capabilities: { bandwidth: true } },
        ],
      }),
    );
    berthd = await startBerthd({ args: ['--cni-conf-dir', path.join(dir, 'cni')] });
  });

  afterAll(async () => {
    await tearDown(berthd, br);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shapes traffic as the bandwidth annotations ask, and shows the CNI result in verbose status', async () => {
    const id = (
      await berthd.client.runtime.RunPodSandbox({
        config: podConfig('shaped', { annotations: { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '20M' } }),
      })
    ).pod_sandbox_id;
    const info = JSON.parse((await berthd.client.runtime.PodSandboxStatus({ pod_sandbox_id: id, verbose: true })).info.info) as {
      cniResult: { interfaces: Array<{ name: string; sandbox?: string }> };
    };
    const hostVeth = info.cniResult.interfaces.find((i) => !i.sandbox && i.name !== br)?.name ?? '';
    expect(hostVeth).not.toBe('');
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', hostVeth], { encoding: 'utf8' })).toMatch(/tbf .*rate 10Mbit/);
    await expect(
      berthd.client.runtime.RunPodSandbox({ config: podConfig('badbw', { annotations: { 'kubernetes.io/ingress-bandwidth': 'fast' } }) }),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('is not a quantity') });
  });
});
