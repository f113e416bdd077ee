// Crash consistency of pod sandboxes: berthd dies (SIGKILL, via BERTH_FAILPOINTS) between every pair of
// side effects of RunPodSandbox, StopPodSandbox and RemovePodSandbox; a restart on the same dirs plus what
// the kubelet then does (list and remove, retry) must leave nothing behind: no record, state dir, pin,
// mount, veth, IP reservation, CNI cache entry, cgroup or init.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { cgroupLayout } from '../../src/cgroups/layout';
import { exitOf, startBerthd, type BerthdHandle } from '../support/berthd';
import { bridgeNetwork, type BridgeNetwork } from '../support/bridge-network';

const tag = `${process.pid % 10000}`;
const NET = `crashpods${tag}`;

const RUN_FAILPOINTS = [
  'pod.after-record',
  'pod.after-statedir',
  'pod.after-netns',
  'pod.after-shm',
  'pod.cni.before-cache',
  'pod.after-cni',
  'pod.after-cgroup',
  'pod.after-init',
  'pod.after-init-cgroup',
  'pod.before-ready',
];
const STOP_FAILPOINTS = ['pod.stop.after-init', 'pod.stop.after-cni'];
const REMOVE_FAILPOINTS = ['pod.remove.after-marking', 'pod.remove.after-teardown'];

function podConfig(name: string): PodSandboxConfig {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: '/tmp',
    // Every namespace of its own, so that every step (pins, shm, init) is taken.
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } },
  };
}

const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

describe('pod sandboxes survive berthd being killed at any step', () => {
  let dir: string;
  let net: BridgeNetwork;
  const daemons: BerthdHandle[] = [];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-crash-pods-'));
    net = bridgeNetwork(dir, { name: NET, bridge: `bcp${tag}`, subnet: `10.131.${process.pid % 250}`, portmap: true });
  });

  afterAll(async () => {
    for (const d of daemons) await d.cleanup().catch(() => undefined);
    net?.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = async (opts: { dir?: string; failpoint?: string }) => {
    const d = await startBerthd({
      ...(opts.dir ? { dir: opts.dir } : {}),
      args: ['--cni-conf-dir', net.confDir],
      env: { BERTH_FAILPOINTS: opts.failpoint ? `${opts.failpoint}=crash` : '' },
    });
    daemons.push(d);
    return d;
  };

  /** Waits for the daemon to be gone by its own SIGKILL, after the call that hit the failpoint. */
  const crashed = async (d: BerthdHandle, call: Promise<unknown>) => {
    await expect(call).rejects.toBeTruthy();
    await exitOf(d.process);
    expect(d.process.signalCode).toBe('SIGKILL');
    d.client.close();
  };

  const recordIds = (d: BerthdHandle) => list(path.join(d.root, 'pods')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));

  const leftovers = (d: BerthdHandle, ids: string[]) => {
    const roots = [...cgroupLayout().v1, ...(cgroupLayout().unified ? [cgroupLayout().unified!] : [])];
    const inits = list('/proc').filter((p) => {
      if (!/^\d+$/.test(p)) return false;
      try {
        const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        return st.includes('(berth-init)') && !/ [ZX] /.test(st.slice(st.lastIndexOf(')'))) && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(d.state);
      } catch {
        return false;
      }
    });
    return {
      records: list(path.join(d.root, 'pods')).filter((f) => f.endsWith('.json')),
      stateDirs: list(path.join(d.state, 'pods')),
      pins: ['net', 'uts', 'ipc', 'pid'].flatMap((k) => list(path.join(d.state, 'ns', k))),
      mounts: fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(d.state)),
      veths: execFileSync('ip', ['-o', 'link', 'show', 'master', net.bridge], { encoding: 'utf8' }).split('\n').filter(Boolean),
      ips: list(path.join(dir, 'ipam', NET)).filter((f) => f.startsWith(net.subnet)),
      cniCache: list(path.join(d.root, 'cni', 'results')),
      cgroups: ids.flatMap((id) => roots.map((r) => path.join(r, 'berth', id)).filter((c) => fs.existsSync(c))),
      inits,
    };
  };
  const nothing = { records: [], stateDirs: [], pins: [], mounts: [], veths: [], ips: [], cniCache: [], cgroups: [], inits: [] };

  // The bridge must exist for `ip link show master`: one pod made and removed first.
  beforeAll(async () => {
    const d = await start({});
    const id = (await d.client.runtime.RunPodSandbox({ config: podConfig('warm') })).pod_sandbox_id;
    await d.client.runtime.RemovePodSandbox({ pod_sandbox_id: id });
    await d.cleanup();
  });

  it.each(RUN_FAILPOINTS)('RunPodSandbox killed at %s is rolled back at restart', async (fp) => {
    const first = await start({ failpoint: fp });
    const config = podConfig(`run-${fp.replace(/\./g, '-')}`);
    await crashed(first, first.client.runtime.RunPodSandbox({ config }));
    const ids = recordIds(first);
    expect(ids.length).toBe(1);
    // The crash left work behind (not a vacuous test): the state dir, and an address once CNI ADD ran.
    const left = leftovers(first, ids);
    if (fp !== 'pod.after-record') expect(left.stateDirs).toEqual(ids);
    if (fp === 'pod.cni.before-cache' || fp === 'pod.after-cni' || fp === 'pod.before-ready') expect(left.ips.length).toBe(1);
    if (fp === 'pod.cni.before-cache') expect(left.cniCache).toEqual([]);
    const second = await start({ dir: first.dir });
    expect(second.output()).toContain('"repair":"pod-rolled-back"');
    // The kubelet: whatever is listed goes; then the retried RunPodSandbox works, and its pod goes too.
    for (const p of (await second.client.runtime.ListPodSandbox({})).items) await second.client.runtime.RemovePodSandbox({ pod_sandbox_id: p.id });
    const id = (await second.client.runtime.RunPodSandbox({ config })).pod_sandbox_id;
    await second.client.runtime.StopPodSandbox({ pod_sandbox_id: id });
    await second.client.runtime.RemovePodSandbox({ pod_sandbox_id: id });
    expect(leftovers(second, [...ids, id])).toEqual(nothing);
    await second.cleanup();
  });

  it.each(STOP_FAILPOINTS)('StopPodSandbox killed at %s completes when retried', async (fp) => {
    const first = await start({ failpoint: fp });
    const id = (await first.client.runtime.RunPodSandbox({ config: podConfig(`stop-${fp.replace(/\./g, '-')}`) })).pod_sandbox_id;
    await crashed(first, first.client.runtime.StopPodSandbox({ pod_sandbox_id: id }));
    const second = await start({ dir: first.dir });
    await second.client.runtime.StopPodSandbox({ pod_sandbox_id: id });
    expect((await second.client.runtime.PodSandboxStatus({ pod_sandbox_id: id })).status?.state).toBe('SANDBOX_NOTREADY');
    // Stopped means no address held and no veth left, before any removal.
    expect(leftovers(second, [id]).veths).toEqual([]);
    expect(leftovers(second, [id]).ips).toEqual([]);
    await second.client.runtime.RemovePodSandbox({ pod_sandbox_id: id });
    expect(leftovers(second, [id])).toEqual(nothing);
    await second.cleanup();
  });

  it.each(REMOVE_FAILPOINTS)('RemovePodSandbox killed at %s is rolled forward at restart', async (fp) => {
    const first = await start({ failpoint: fp });
    const id = (await first.client.runtime.RunPodSandbox({ config: podConfig(`remove-${fp.replace(/\./g, '-')}`) })).pod_sandbox_id;
    await crashed(first, first.client.runtime.RemovePodSandbox({ pod_sandbox_id: id }));
    const second = await start({ dir: first.dir });
    expect(second.output()).toContain('"repair":"pod-removal-completed"');
    await second.client.runtime.RemovePodSandbox({ pod_sandbox_id: id });
    expect(leftovers(second, [id])).toEqual(nothing);
    await second.cleanup();
  });

  it('sweeps what a pod left without any record (an older berthd, or a lost record)', async () => {
    const first = await start({});
    const id = (await first.client.runtime.RunPodSandbox({ config: podConfig('orphan') })).pod_sandbox_id;
    await first.stop('SIGKILL');
    first.client.close();
    fs.rmSync(path.join(first.root, 'pods', `${id}.json`));
    // A CNI result cache write a kill cut short (its temp file was never renamed into place).
    const cutWrite = path.join(first.root, 'cni', 'results', `.${NET}-${id}-eth0.0123456789ab.tmp`);
    fs.writeFileSync(cutWrite, '{');
    const second = await start({ dir: first.dir });
    expect(fs.existsSync(cutWrite)).toBe(false);
    for (const kind of ['pod-orphan-statedir', 'netns-orphan', 'pidns-orphan', 'mount-orphan', 'pod-init-orphan', 'cni-orphan', 'cgroup-orphan']) {
      expect(second.output()).toContain(`"repair":"${kind}"`);
    }
    expect((await second.client.runtime.ListPodSandbox({})).items).toEqual([]);
    expect(leftovers(second, [id])).toEqual(nothing);
    await second.cleanup();
  });
});
