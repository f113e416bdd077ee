// The node VM (test/support/node-vm.ts): a real Debian 12 node with systemd as PID 1 on pure cgroup v2,
// berth installed from its Debian package and running as berth.service; driven from the host over
// loopback-only forwards. One boot for the whole file; its last tests upgrade, downgrade, remove and purge
// the package, then install the release bundle in its place.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { LinuxContainerResources } from '../../src/generated/runtime/v1/LinuxContainerResources';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { startNodeVmWithRegistry, type NodeVm, type NodeVmWithRegistry } from '../support/node-vm';
import { until } from '../support/until';

// Generous: a fresh machine builds the image first (~80 s), and every guest step runs under TCG.
const VM_TIMEOUT = 600_000;
const MiB = 1024 * 1024;

let env: NodeVmWithRegistry | undefined;
let vm: NodeVm;
let image: string;

beforeAll(async () => {
  // crun, which this hybrid-cgroup host cannot run, is a handler on the pure v2 node.
  const berthConfig = '[runtime.handlers.crun]\nruntime_path = "/usr/bin/crun"\n';
  env = await startNodeVmWithRegistry({ berthConfig, log: (l) => console.log(`[node-vm] ${l}`) });
  ({ vm, image } = env);
  console.log(`[node-vm] timings ${JSON.stringify(vm.timings)}`);
}, VM_TIMEOUT);

afterAll(async () => {
  await env?.stop();
}, 120_000);

describe('node VM: systemd, cgroup v2, berth.service', { timeout: 180_000 }, () => {

  const podConfig = (name: string): PodSandboxConfig => ({
    metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: `/var/log/pods/${name}`,
    // Each container its own PID namespace (a shared-PID pod is another test's business).
    linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } },
  });
  const ctrConfig = (name: string, script: string): ContainerConfig => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['sh', '-c', script],
    log_path: `${name}.log`,
  });
  const rt = () => vm.cri.runtime;
  /** "PID comm" of every berth-monitor and berth-init in berth.service's cgroup subtree. */
  const helpersInUnit = async () =>
    (
      await vm.sshOk(
        'cg=/sys/fs/cgroup$(systemctl show -p ControlGroup --value berth); ' +
          'for p in $(cat $(find "$cg" -name cgroup.procs)); do echo "$p $(cat /proc/$p/comm)"; done | grep -E " berth-(monitor|init)$" | sort -n || true',
      )
    )
      .trim()
      .split('\n')
      .filter(Boolean);

  it('runs systemd as PID 1 on a pure cgroup v2 hierarchy with every controller', async () => {
    const [comm, fstype, controllers] = (await vm.sshOk('cat /proc/1/comm; stat -fc %T /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.controllers')).trim().split('\n');
    expect(comm).toBe('systemd');
    expect(fstype).toBe('cgroup2fs');
    expect(controllers.split(' ')).toEqual(expect.arrayContaining(['cpuset', 'cpu', 'io', 'memory', 'pids']));
  });

  it('runs berthd as berth.service, delegated, and the unit verifies', async () => {
    expect((await vm.sshOk('systemctl is-active berth')).trim()).toBe('active');
    const props = await vm.sshOk('systemctl show berth -p Delegate -p KillMode -p OOMScoreAdjust -p TasksMax -p LimitNOFILE -p ExecStart');
    expect(props).toMatch(/^Delegate=yes$/m);
    expect(props).toMatch(/^KillMode=process$/m);
    expect(props).toMatch(/^OOMScoreAdjust=-999$/m);
    expect(props).toMatch(/^TasksMax=infinity$/m);
    expect(props).toMatch(/^LimitNOFILE=1048576$/m);
    expect(props).toContain('/usr/bin/berthd --log-format json');
    expect((await vm.sshOk('systemctl is-enabled berth')).trim()).toBe('enabled');
    const verify = await vm.ssh('systemd-analyze verify /lib/systemd/system/berth.service');
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stderr.trim()).toBe('');
    expect(await vm.sshOk('cat /etc/crictl.yaml')).toContain('runtime-endpoint: unix:///run/berth/berth.sock');
  });

  it('answers Version, Status and RuntimeConfig over the CRI', async () => {
    expect(await rt().Version({ version: 'v1' })).toMatchObject({ runtime_name: 'berth', runtime_api_version: 'v1' });
    const status = await rt().Status({ verbose: false });
    expect(status.status!.conditions.find((c) => c.type === 'RuntimeReady')?.status).toBe(true);
    expect(status.status!.conditions.find((c) => c.type === 'NetworkReady')?.status).toBe(true);
    const config = await rt().RuntimeConfig({});
    // The default: the guest's berth.toml names no driver (the driver tests below set one).
    expect(config.linux?.cgroup_driver).toBe('CGROUPFS');
  });

  it('pulled the busybox test image from the host registry through the guest forward', async () => {
    const s = await vm.cri.image.ImageStatus({ image: { image } });
    expect(s.image?.repo_tags).toContain(image);
    // Pulled again: served from the store, same id.
    expect((await vm.cri.image.PullImage({ image: { image } })).image_ref).toBe(s.image!.id);
  });

  it('runs a pod and a container, execs in it, stops and removes them', async () => {
    const config = podConfig('life');
    const t0 = performance.now();
    const pod = (await rt().RunPodSandbox({ config })).pod_sandbox_id;
    const t1 = performance.now();
    const id = (await rt().CreateContainer({ pod_sandbox_id: pod, config: ctrConfig('main', 'echo hello; exec sleep 3600'), sandbox_config: config })).container_id;
    const t2 = performance.now();
    await rt().StartContainer({ container_id: id });
    const t3 = performance.now();
    expect((await rt().ContainerStatus({ container_id: id })).status!.state).toBe('CONTAINER_RUNNING');
    const exec = await rt().ExecSync({ container_id: id, cmd: ['sh', '-c', 'echo out; cat /proc/1/cmdline | tr "\\0" " "; exit 3'], timeout: '30' });
    const t4 = performance.now();
    // What TCG costs: compare with the same calls against a berthd on the host.
    console.log(`[node-vm] guest: RunPodSandbox ${(t1 - t0).toFixed(0)} ms, CreateContainer ${(t2 - t1).toFixed(0)} ms, StartContainer ${(t3 - t2).toFixed(0)} ms, ExecSync ${(t4 - t3).toFixed(0)} ms`);
    expect(exec.exit_code).toBe(3);
    expect(exec.stdout.toString()).toMatch(/^out\nsleep 3600/);
    expect(await vm.sshOk(`cat /var/log/pods/life/main.log`)).toMatch(/ stdout F hello$/m);
    await rt().StopContainer({ container_id: id, timeout: '2' });
    expect((await rt().ContainerStatus({ container_id: id })).status!.state).toBe('CONTAINER_EXITED');
    await rt().RemoveContainer({ container_id: id });
    await rt().StopPodSandbox({ pod_sandbox_id: pod });
    await rt().RemovePodSandbox({ pod_sandbox_id: pod });
    expect((await rt().ListContainers({})).containers).toEqual([]);
    expect((await rt().ListPodSandbox({})).items).toEqual([]);
  });

  it("runs a pod in its own user namespace on the node's kernel: mapped ids, idmapped image layers", async () => {
    const maps = [{ container_id: 0, host_id: 524288, length: 65536 }];
    const base = podConfig('userns');
    const config: PodSandboxConfig = { ...base, linux: { security_context: { namespace_options: { pid: 'CONTAINER', userns_options: { mode: 'POD', uids: maps, gids: maps } } } } };
    const pod = (await rt().RunPodSandbox({ config })).pod_sandbox_id;
    const script = 'cat /proc/self/uid_map; stat -c %u:%g /bin/busybox; touch /made && echo made; exec sleep 3600';
    const id = (await rt().CreateContainer({ pod_sandbox_id: pod, config: ctrConfig('main', script), sandbox_config: config })).container_id;
    await rt().StartContainer({ container_id: id });
    const log = async () => (await vm.sshOk('cat /var/log/pods/userns/main.log')).split('\n').map((l) => l.split(' ').slice(3).join(' ').trim().replace(/\s+/g, ' ')).filter(Boolean);
    await until('the script to run', async () => (await log()).includes('made'), 60_000);
    expect(await log()).toEqual(['0 524288 65536', '0:0', 'made']);
    const pid = (JSON.parse((await rt().ContainerStatus({ container_id: id, verbose: true })).info.info) as { pid: number }).pid;
    expect((await vm.sshOk(`stat -c %u /proc/${pid}/root/made; awk '/^Uid:/ {print $2}' /proc/${pid}/status`)).trim().split('\n')).toEqual(['524288', '524288']);
    await rt().StopPodSandbox({ pod_sandbox_id: pod });
    await rt().RemovePodSandbox({ pod_sandbox_id: pod });
    expect((await vm.sshOk('ls /run/berth/ns/user')).trim()).toBe('');
  });

  it('confines containers with AppArmor: berth-default by default, a profile of the node by name, none when unconfined', async () => {
    expect((await vm.sshOk('cat /sys/module/apparmor/parameters/enabled')).trim()).toBe('Y');
    // A profile of the node's own: anything but reading /etc/hostname.
    const profile = ['profile berth-test-deny flags=(attach_disconnected) {', '  file,', '  capability,', '  network,', '  signal,', '  deny /etc/hostname r,', '}'];
    await vm.sshOk(`printf '%s\\n' ${profile.map((l) => `'${l}'`).join(' ')} | apparmor_parser -r`);
    const config = podConfig('aa');
    const pod = (await rt().RunPodSandbox({ config })).pod_sandbox_id;
    const script = 'cat /proc/self/attr/current; cat /etc/hostname >/dev/null 2>&1 && echo read || echo denied; echo done; exec sleep 3600';
    const run = async (name: string, apparmor: NonNullable<ContainerConfig['linux']>['security_context']) => {
      const id = (await rt().CreateContainer({ pod_sandbox_id: pod, config: { ...ctrConfig(name, script), linux: { security_context: apparmor } }, sandbox_config: config })).container_id;
      await rt().StartContainer({ container_id: id });
      return id;
    };
    const ids = {
      plain: await run('plain', {}),
      named: await run('named', { apparmor: { profile_type: 'Localhost', localhost_ref: 'berth-test-deny' } }),
      unconfined: await run('unconfined', { apparmor: { profile_type: 'Unconfined' } }),
    };
    const log = async (name: string) => (await vm.sshOk(`cat /var/log/pods/aa/${name}.log`)).split('\n').map((l) => l.split(' ').slice(3).join(' ').trim()).filter(Boolean);
    await until('the scripts to run', async () => (await Promise.all(Object.keys(ids).map(log))).every((l) => l.includes('done')), 60_000);
    expect(await log('plain')).toEqual(['berth-default (enforce)', 'read', 'done']);
    expect(await log('named')).toEqual(['berth-test-deny (enforce)', 'denied', 'done']);
    expect(await log('unconfined')).toEqual(['unconfined', 'read', 'done']);
    // An exec'd process is confined as its container is.
    const exec = await rt().ExecSync({ container_id: ids.named, cmd: ['cat', '/proc/self/attr/current'], timeout: '30' });
    expect(exec.stdout.toString().trim()).toBe('berth-test-deny (enforce)');
    const missing = await rt()
      .CreateContainer({ pod_sandbox_id: pod, config: { ...ctrConfig('missing', 'true'), linux: { security_context: { apparmor: { profile_type: 'Localhost', localhost_ref: 'no-such-profile' } } } }, sandbox_config: config })
      .then(() => undefined, (e: { code: number; details: string }) => e);
    expect(missing).toMatchObject({ code: 9, details: expect.stringContaining('not loaded') });
    await rt().StopPodSandbox({ pod_sandbox_id: pod });
    await rt().RemovePodSandbox({ pod_sandbox_id: pod });
  });

  it('keeps a container running across `systemctl restart berth`', async () => {
    const config = podConfig('survivor');
    const pod = (await rt().RunPodSandbox({ config })).pod_sandbox_id;
    const id = (await rt().CreateContainer({ pod_sandbox_id: pod, config: ctrConfig('main', 'exec sleep 31337'), sandbox_config: config })).container_id;
    await rt().StartContainer({ container_id: id });
    const pidOf = async () => (await vm.sshOk(`pgrep -x -f 'sleep 31337'`)).trim();
    const pid = await pidOf();
    expect(pid).toMatch(/^\d+$/);
    const cgroup = (await vm.sshOk(`cat /proc/${pid}/cgroup`)).trim();
    expect(cgroup).not.toContain('berth.service');
    console.log(`[node-vm] the container's cgroup: ${cgroup}`);
    const monitors = await helpersInUnit();
    // (Compared whole after the restart: it must not be empty.)
    expect(monitors).toContainEqual(expect.stringMatching(/^\d+ berth-monitor$/));
    const berthdBefore = await vm.berthdPid();

    await vm.restartBerth();

    expect(await vm.berthdPid()).not.toBe(berthdBefore);
    expect(await pidOf()).toBe(pid);
    expect((await vm.sshOk(`cat /proc/${pid}/cgroup`)).trim()).toBe(cgroup);
    // The monitors stayed in berth.service's cgroup (KillMode=process) and are still there.
    expect(await helpersInUnit()).toEqual(monitors);
    expect((await rt().ContainerStatus({ container_id: id })).status!.state).toBe('CONTAINER_RUNNING');
    expect((await rt().ExecSync({ container_id: id, cmd: ['true'], timeout: '30' })).exit_code).toBe(0);

    await rt().StopPodSandbox({ pod_sandbox_id: pod });
    await rt().RemovePodSandbox({ pod_sandbox_id: pod });
    expect((await vm.ssh(`pgrep -x -f 'sleep 31337'`)).code).toBe(1);
  });
});

/** Drives one cgroup driver in the guest; the berthd there is reconfigured and restarted first. */
describe.each(['cgroupfs', 'systemd'] as const)('node VM: cgroup v2 with the %s driver', { timeout: 180_000 }, (driver) => {
  const rt = () => vm.cri.runtime;
  let seq = 0;
  const uid = () => `${driver}-${process.pid}-${++seq}`;

  /** The kubelet's pod cgroup for this driver: a path it made (cgroupfs) or its slice (systemd). */
  async function kubeletParent(podUid: string): Promise<string> {
    const id = podUid.replace(/-/g, '_');
    if (driver === 'systemd') return `kubepods-burstable-pod${id}.slice`;
    const dir = `/kubepods/burstable/pod${id}`;
    // As the kubelet's cgroupfs manager: the tree made, its controllers delegated on the way down.
    await vm.sshOk(`set -e; cd /sys/fs/cgroup; for d in kubepods kubepods/burstable; do mkdir -p $d; done; mkdir -p .${dir};
      for d in . kubepods kubepods/burstable; do echo '+cpu +memory +pids +io +cpuset +hugetlb' > $d/cgroup.subtree_control; done`);
    return dir;
  }

  const podConfig = (name: string, podUid: string, cgroupParent: string, sharedPid = true): PodSandboxConfig => ({
    metadata: { name, namespace: 'v2', uid: podUid, attempt: 0 },
    hostname: name,
    log_directory: `/var/log/pods/v2_${name}_${podUid}`,
    linux: {
      cgroup_parent: cgroupParent,
      security_context: { namespace_options: { network: 'POD', pid: sharedPid ? 'POD' : 'CONTAINER', ipc: 'POD' } },
    },
  });

  const ctrConfig = (name: string, script: string, resources: LinuxContainerResources = {}): ContainerConfig => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['sh', '-c', script],
    log_path: `${name}.log`,
    linux: { resources },
  });

  async function runContainer(podId: string, pod: PodSandboxConfig, config: ContainerConfig): Promise<string> {
    const id = (await rt().CreateContainer({ pod_sandbox_id: podId, config, sandbox_config: pod })).container_id;
    await rt().StartContainer({ container_id: id });
    return id;
  }

  const info = async (id: string) => JSON.parse((await rt().ContainerStatus({ container_id: id, verbose: true })).info.info) as { cgroup: string; pid: number; monitorPid: number };
  const cgFile = async (cgroup: string, file: string) => (await vm.sshOk(`cat /sys/fs/cgroup${cgroup}/${file}`)).trim();
  const exec = async (id: string, cmd: string) => {
    const r = await rt().ExecSync({ container_id: id, cmd: ['sh', '-c', cmd], timeout: '30' });
    return { code: r.exit_code, out: Buffer.from(r.stdout).toString().trim(), err: Buffer.from(r.stderr).toString().trim() };
  };
  const waitFor = <T>(what: string, probe: () => Promise<T | undefined>) => until(what, probe, 60_000);

  // A test that fails half-way leaves its pods: they go before the next test looks for leftovers.
  afterEach(async () => {
    for (const p of (await rt().ListPodSandbox({})).items) await rt().RemovePodSandbox({ pod_sandbox_id: p.id });
  });

  beforeAll(async () => {
    await vm.sshOk(`mkdir -p /etc/berth/berth.d; printf '[runtime]\\ncgroup_driver = "${driver}"\\n' > /etc/berth/berth.d/50-driver.toml`);
    await vm.restartBerth();
    expect((await rt().RuntimeConfig({})).linux?.cgroup_driver).toBe(driver === 'systemd' ? 'SYSTEMD' : 'CGROUPFS');
  }, 180_000);

  it('runs a shared-PID pod under the kubelet parent: the init in a leaf of its own, limits in the container cgroup, a private cgroup namespace', async () => {
    const podUid = uid();
    const pod = podConfig('limits', podUid, await kubeletParent(podUid));
    const podId = (await rt().RunPodSandbox({ config: pod })).pod_sandbox_id;
    const podInfo = JSON.parse((await rt().PodSandboxStatus({ pod_sandbox_id: podId, verbose: true })).info.info) as { cgroup: string; initPid: number };
    const initCgroup = (await vm.sshOk(`cat /proc/${podInfo.initPid}/cgroup`)).trim();
    expect(initCgroup).toBe(driver === 'systemd' ? `0::${podInfo.cgroup}/berth-${podId}.scope` : `0::${podInfo.cgroup}/${podId}`);
    if (driver === 'systemd') expect((await vm.sshOk(`systemctl is-active berth-${podId}.scope`)).trim()).toBe('active');

    const id = await runContainer(podId, pod, ctrConfig('main', 'exec sleep 3600', {
      memory_limit_in_bytes: String(64 * MiB), cpu_period: '100000', cpu_quota: '50000', cpu_shares: '512',
      // memory.oom.group: what the kubelet (1.32+, singleProcessOOMKill false) asks for on v2.
      unified: { 'pids.max': '20', 'io.weight': 'default 300', 'memory.oom.group': '1' },
    }));
    const { cgroup } = await info(id);
    expect(cgroup).toBe(driver === 'systemd' ? `${podInfo.cgroup}/berth-${id}.scope` : `${podInfo.cgroup}/${id}`);
    expect(await cgFile(cgroup, 'memory.max')).toBe(String(64 * MiB));
    expect(await cgFile(cgroup, 'cpu.max')).toBe('50000 100000');
    expect(await cgFile(cgroup, 'pids.max')).toBe('20');
    expect(await cgFile(cgroup, 'io.weight')).toBe('default 300');
    expect(await cgFile(cgroup, 'memory.oom.group')).toBe('1');
    // Shares 512 on the v1 scale [2, 262144] is weight 20 on v2's [1, 10000] (runc's conversion).
    expect(await cgFile(cgroup, 'cpu.weight')).toBe('20');
    if (driver === 'systemd') {
      const unit = await vm.sshOk(`systemctl show berth-${id}.scope -p ActiveState -p Slice -p Delegate -p MemoryMax`);
      expect(unit).toMatch(/^ActiveState=active$/m);
      expect(unit).toMatch(new RegExp(`^Slice=${pod.linux!.cgroup_parent!.replace(/\./g, '\\.')}$`, 'm'));
      expect(unit).toMatch(/^Delegate=yes$/m);
      expect(unit).toMatch(new RegExp(`^MemoryMax=${64 * MiB}$`, 'm'));
    }
    // Its own cgroup namespace: the container sees its cgroup as the root, and the cgroup2 fs of it.
    expect((await exec(id, 'cat /proc/self/cgroup')).out).toBe('0::/');
    expect((await exec(id, 'cat /sys/fs/cgroup/memory.max')).out).toBe(String(64 * MiB));
    // Shared PID namespace: the pod's init is PID 1 there.
    expect((await exec(id, 'cat /proc/1/comm')).out).toBe('berth-init');

    await rt().UpdateContainerResources({ container_id: id, linux: { memory_limit_in_bytes: String(128 * MiB), cpu_period: '100000', cpu_quota: '20000' } });
    expect(await cgFile(cgroup, 'memory.max')).toBe(String(128 * MiB));
    expect(await cgFile(cgroup, 'cpu.max')).toBe('20000 100000');
    if (driver === 'systemd') expect(await vm.sshOk(`systemctl show berth-${id}.scope -p MemoryMax`)).toContain(`MemoryMax=${128 * MiB}`);

    await rt().StopPodSandbox({ pod_sandbox_id: podId });
    await rt().RemovePodSandbox({ pod_sandbox_id: podId });
    await expectNothingLeft(podId, [id], podInfo.cgroup);
  });

  it('enforces the limits: a memory.max OOM kill is OOMKilled 137, pids.max refuses forks, cpu.max throttles, cpuset pins', async () => {
    const podUid = uid();
    const pod = podConfig('enforce', podUid, await kubeletParent(podUid), false);
    const podId = (await rt().RunPodSandbox({ config: pod })).pod_sandbox_id;
    const oom = await runContainer(podId, pod, ctrConfig('oom', 'a=xxxxxxxx; while :; do a="$a$a"; done', { memory_limit_in_bytes: String(32 * MiB) }));
    const pids = await runContainer(podId, pod, ctrConfig('pids', 'exec sleep 3600', { unified: { 'pids.max': '4' } }));
    const busy = await runContainer(podId, pod, ctrConfig('busy', 'while :; do :; done', { cpu_period: '100000', cpu_quota: '10000', cpuset_cpus: '1' }));

    const exited = await waitFor('the OOM kill', async () => {
      const s = (await rt().ContainerStatus({ container_id: oom })).status!;
      return s.state === 'CONTAINER_EXITED' ? s : undefined;
    });
    expect({ exitCode: exited.exit_code, reason: exited.reason }).toEqual({ exitCode: 137, reason: 'OOMKilled' });

    const forks = await exec(pids, 'for i in 1 2 3 4 5 6; do sleep 20 & done; wait');
    expect(forks.err).toMatch(/fork/i);
    expect(await cgFile((await info(pids)).cgroup, 'pids.events')).toMatch(/^max [1-9]\d*$/m);

    const busyCgroup = (await info(busy)).cgroup;
    // The wait is the check: throttled at least once (nr_throttled above 0).
    await waitFor('throttling', async () => {
      const n = Number((await cgFile(busyCgroup, 'cpu.stat')).match(/^nr_throttled (\d+)$/m)?.[1] ?? '0');
      return n > 0 ? n : undefined;
    });
    expect(await cgFile(busyCgroup, 'cpuset.cpus')).toBe('1');
    expect((await exec(busy, 'grep Cpus_allowed_list /proc/self/status')).out).toMatch(/:\s+1$/);

    await rt().StopPodSandbox({ pod_sandbox_id: podId });
    await rt().RemovePodSandbox({ pod_sandbox_id: podId });
    await expectNothingLeft(podId, [oom, pids, busy]);
  });

  it.each(['runc', 'crun'])("runs berth's own pods (no cgroup parent) with the %s handler, and removes every cgroup and unit", async (handler) => {
    const pod = podConfig(`own-${handler}`, uid(), '');
    const podId = (await rt().RunPodSandbox({ config: pod, runtime_handler: handler })).pod_sandbox_id;
    const podCgroup = (JSON.parse((await rt().PodSandboxStatus({ pod_sandbox_id: podId, verbose: true })).info.info) as { cgroup: string }).cgroup;
    expect(podCgroup).toBe(driver === 'systemd' ? `/berth.slice/berth-pod${podId}.slice` : `/berth/${podId}`);
    const id = await runContainer(podId, pod, ctrConfig('main', 'exec sleep 3600', { memory_limit_in_bytes: String(48 * MiB) }));
    // crun (systemd driver) runs the container in a "container" child of its scope and limits that
    // child; runc and berth-runtime limit the scope. Either way the limit is on the process's cgroup.
    const { cgroup, pid } = await info(id);
    const own = (await vm.sshOk(`cat /proc/${pid}/cgroup`)).trim().replace(/^0::/, '');
    expect(own === cgroup || own.startsWith(`${cgroup}/`), `${own} is not in ${cgroup}`).toBe(true);
    expect(await cgFile(own, 'memory.max')).toBe(String(48 * MiB));
    expect((await exec(id, 'cat /proc/self/cgroup')).out).toBe('0::/');
    await rt().RemovePodSandbox({ pod_sandbox_id: podId });
    await expectNothingLeft(podId, [id], podCgroup);
  });

  it("reports OOMKilled when the kill is seen only after the container's cgroup is gone (its monitor stopped meanwhile)", async () => {
    const podUid = uid();
    const pod = podConfig('late-oom', podUid, await kubeletParent(podUid), false);
    const podId = (await rt().RunPodSandbox({ config: pod })).pod_sandbox_id;
    // It eats memory past its limit once /tmp/go appears: after its monitor is stopped.
    const script = 'while [ ! -e /tmp/go ]; do sleep 0.2; done; a=xxxxxxxx; while :; do a="$a$a"; done';
    const id = await runContainer(podId, pod, ctrConfig('oom', script, { memory_limit_in_bytes: String(32 * MiB) }));
    const { pid, cgroup, monitorPid } = await info(id);
    await vm.sshOk(`kill -STOP ${monitorPid}`);
    try {
      await vm.sshOk(`touch /proc/${pid}/root/tmp/go`);
      // Killed, and its cgroup emptied (with the systemd driver, removed with its scope) while the monitor sleeps.
      const events = `/sys/fs/cgroup${cgroup}/cgroup.events`;
      await waitFor('the OOM kill', async () => ((await vm.ssh(`test ! -e ${events} || grep -q '^populated 0' ${events}`)).code === 0 ? true : undefined));
      if (driver === 'systemd') await waitFor("systemd to remove the scope's cgroup", async () => ((await vm.ssh(`test -e /sys/fs/cgroup${cgroup}`)).code !== 0 ? true : undefined));
    } finally {
      await vm.sshOk(`kill -CONT ${monitorPid}`);
    }
    const exited = await waitFor('the exit', async () => {
      const s = (await rt().ContainerStatus({ container_id: id })).status!;
      return s.state === 'CONTAINER_EXITED' ? s : undefined;
    });
    expect({ exitCode: exited.exit_code, reason: exited.reason }).toEqual({ exitCode: 137, reason: 'OOMKilled' });
    await rt().RemovePodSandbox({ pod_sandbox_id: podId });
    await expectNothingLeft(podId, [id]);
  });

  it('keeps containers, their units and their logs going across `systemctl restart berth`', async () => {
    const podUid = uid();
    const pod = podConfig('restart', podUid, await kubeletParent(podUid));
    const podId = (await rt().RunPodSandbox({ config: pod })).pod_sandbox_id;
    const id = await runContainer(podId, pod, ctrConfig('ticker', 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done'));
    const { pid, cgroup } = await info(id);
    const log = `${pod.log_directory}/ticker.log`;
    const ticks = async () => Number((await vm.sshOk(`grep -c ' stdout F tick ' ${log} || true`)).trim());
    await waitFor('the first ticks', async () => ((await ticks()) > 0 ? true : undefined));

    await vm.restartBerth();

    const before = await ticks();
    await waitFor('ticks after the restart', async () => ((await ticks()) > before + 3 ? true : undefined));
    const after = await info(id);
    expect({ pid: after.pid, cgroup: after.cgroup }).toEqual({ pid, cgroup });
    expect((await rt().ContainerStatus({ container_id: id })).status!.state).toBe('CONTAINER_RUNNING');
    if (driver === 'systemd') expect((await vm.sshOk(`systemctl is-active berth-${id}.scope berth-${podId}.scope`)).trim().split('\n')).toEqual(['active', 'active']);
    await rt().RemovePodSandbox({ pod_sandbox_id: podId });
    await expectNothingLeft(podId, [id]);
  });

  it('rolls back a CreateContainer cut by a crash (a failpoint under berth.service): no scope or cgroup is left, and the retry works', async () => {
    const dropIn = '/etc/systemd/system/berth.service.d/50-failpoint.conf';
    const podUid = uid();
    const pod = podConfig('crash', podUid, await kubeletParent(podUid));
    const podId = (await rt().RunPodSandbox({ config: pod })).pod_sandbox_id;
    const config = ctrConfig('main', 'exec sleep 3600', { memory_limit_in_bytes: String(64 * MiB) });
    await vm.sshOk(`mkdir -p ${dropIn.replace(/\/[^/]+$/, '')}; printf '[Service]\nEnvironment=BERTH_FAILPOINTS=container.after-monitor=crash\n' > ${dropIn}; systemctl daemon-reload`);
    try {
      await vm.restartBerth();
      // The runtime has made the container (its scope or cgroup, its monitor) when berthd dies.
      await expect(rt().CreateContainer({ pod_sandbox_id: podId, config, sandbox_config: pod })).rejects.toMatchObject({ code: 14 });
    } finally {
      await vm.sshOk(`rm -f ${dropIn}; systemctl daemon-reload`);
    }
    await vm.restartBerth();
    expect((await rt().ListContainers({})).containers).toEqual([]);
    expect(await vm.sshOk('journalctl -q -o cat -u berth | grep -c \'"repair":"container-rolled-back"\' || true')).not.toBe('0\n');
    const podCgroup = (JSON.parse((await rt().PodSandboxStatus({ pod_sandbox_id: podId, verbose: true })).info.info) as { cgroup: string }).cgroup;
    // Below the pod: only its init's leaf (its scope with the systemd driver), no container's.
    const initLeaf = driver === 'systemd' ? `berth-${podId}.scope` : podId;
    expect((await vm.sshOk(`ls /sys/fs/cgroup${podCgroup} | grep -E '^berth-|^[0-9a-f]{64}$' || true`)).trim().split('\n')).toEqual([initLeaf]);
    if (driver === 'systemd') {
      expect((await vm.sshOk(`systemctl list-units --all --plain --no-legend 'berth-*.scope' | awk '{print $1}'`)).trim().split('\n')).toEqual([`${initLeaf}`]);
    }
    const id = await runContainer(podId, pod, config);
    expect((await rt().ContainerStatus({ container_id: id })).status!.state).toBe('CONTAINER_RUNNING');
    await rt().RemovePodSandbox({ pod_sandbox_id: podId });
    await expectNothingLeft(podId, [id]);
  });

  /** No cgroup named by the pod or its containers anywhere in the tree, and no berth unit loaded. */
  async function expectNothingLeft(podId: string, containers: string[], podCgroup?: string): Promise<void> {
    const names = [podId, ...containers].map((x) => `-name '*${x}*'`).join(' -o ');
    expect((await vm.sshOk(`find /sys/fs/cgroup -type d \\( ${names} \\) -print`)).trim()).toBe('');
    if (podCgroup && podCgroup.includes('berth')) expect((await vm.ssh(`test -e /sys/fs/cgroup${podCgroup}`)).code).toBe(1);
    expect((await vm.sshOk(`systemctl list-units --all --plain --no-legend 'berth-*' | grep -v '^berth-cri-proxy' || true`)).trim()).toBe('');
  }
});

// Issue 21: the package's life on a systemd node, with a container running through all of it. Runs last:
// it ends with berth purged and the release bundle installed in its place.
describe('node VM: the Debian package and the release bundle', { timeout: 300_000 }, () => {
  const rt = () => vm.cri.runtime;
  const logFile = '/var/log/pods/pkg/main.log';
  let podId: string;
  let id: string;
  let pid: number;

  const podConfig: PodSandboxConfig = {
    metadata: { name: 'pkg', namespace: 'default', uid: 'uid-pkg', attempt: 0 },
    hostname: 'pkg',
    log_directory: '/var/log/pods/pkg',
    linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } },
  };
  const containerPid = async () => (JSON.parse((await rt().ContainerStatus({ container_id: id, verbose: true })).info.info) as { pid: number }).pid;
  const ticks = async () => Number((await vm.sshOk(`grep -c ' stdout F tick$' ${logFile} || true`)).trim());
  /** Resolves once the container has logged more ticks than it had when called. */
  const logGoesOn = async () => {
    const before = await ticks();
    await until('the container to log on', async () => ((await ticks()) > before + 2 ? true : undefined), 60_000);
  };
  const installed = async () => (await vm.ssh("dpkg-query -W -f='${Version} ${db:Status-Abbrev}' berth")).stdout.trim();
  const monitors = async () => (await vm.sshOk('pgrep -x berth-monitor | sort -n || true')).trim();
  /** The same container, the same process, logging on, and exec works. */
  const expectContainerUntouched = async () => {
    expect((await rt().ContainerStatus({ container_id: id })).status!.state).toBe('CONTAINER_RUNNING');
    expect(await containerPid()).toBe(pid);
    await logGoesOn();
    const exec = await rt().ExecSync({ container_id: id, cmd: ['sh', '-c', 'echo exec in $(hostname)'], timeout: '30' });
    expect({ code: exec.exit_code, out: exec.stdout.toString().trim() }).toEqual({ code: 0, out: 'exec in pkg' });
  };

  beforeAll(async () => {
    // The default configuration again (the driver tests above added a drop-in).
    await vm.sshOk('rm -f /etc/berth/berth.d/50-driver.toml');
    await vm.restartBerth();
    podId = (await rt().RunPodSandbox({ config: podConfig })).pod_sandbox_id;
    const config: ContainerConfig = { metadata: { name: 'main', attempt: 0 }, image: { image }, command: ['sh', '-c', 'while :; do echo tick; sleep 1; done'], log_path: 'main.log' };
    id = (await rt().CreateContainer({ pod_sandbox_id: podId, config, sandbox_config: podConfig })).container_id;
    await rt().StartContainer({ container_id: id });
    pid = await containerPid();
    await logGoesOn();
  }, 300_000);

  it('upgrades to a newer package: berthd alone restarts; the container keeps its PID, its log and exec', async () => {
    const { installed: old, newer } = vm.debs;
    expect(await installed()).toBe(`${old.version} ii`);
    const berthd = await vm.berthdPid();
    const helpers = await monitors();
    expect(helpers).not.toBe('');

    await vm.sshOk(`dpkg --force-confold -i ${newer.path}`);
    await vm.waitCri();

    expect(await installed()).toBe(`${newer.version} ii`);
    expect(await vm.berthdPid()).not.toBe(berthd);
    expect((await rt().Version({ version: 'v1' })).runtime_version).toBe(newer.version);
    const report = (await vm.sshOk('berthd version')).split('\n');
    expect(report[0]).toBe(`berth ${newer.version}`);
    expect(report).toContain(`berth-runtime: ${newer.version}`);
    // The monitors run on from the old package's files (dpkg replaced them beside the running processes).
    expect(await monitors()).toBe(helpers);
    await expectContainerUntouched();
    // A new container in the same pod runs on the new helpers.
    const config: ContainerConfig = { metadata: { name: 'after', attempt: 0 }, image: { image }, command: ['sleep', '3600'], log_path: 'after.log' };
    const after = (await rt().CreateContainer({ pod_sandbox_id: podId, config, sandbox_config: podConfig })).container_id;
    await rt().StartContainer({ container_id: after });
    expect((await rt().ContainerStatus({ container_id: after })).status!.state).toBe('CONTAINER_RUNNING');
  });

  it('downgrades where the state allows it, and refuses, before touching anything, a berth older than the state', async () => {
    const { installed: old, newer } = vm.debs;
    await vm.sshOk(`dpkg --force-confold -i ${old.path}`);
    await vm.waitCri();
    expect(await installed()).toBe(`${old.version} ii`);
    expect((await rt().Version({ version: 'v1' })).runtime_version).toBe(old.version);
    await expectContainerUntouched();

    // State as a berth with a newer format leaves it: no package that cannot read it goes in.
    const format = (await vm.sshOk('cat /var/lib/berth/state-format')).trim();
    expect(JSON.parse(format)).toEqual({ format: 1, writtenBy: `berth ${old.version}` });
    const berthd = await vm.berthdPid();
    await vm.sshOk(`printf '%s\\n' '{"format":2,"writtenBy":"berth 9.0.0"}' > /var/lib/berth/state-format`);
    try {
      const refused = await vm.ssh(`dpkg --force-confold -i ${newer.path}`);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`berth ${newer.version} cannot be installed: the state in /var/lib/berth has format 2, written by berth 9.0.0;`);
      expect(refused.stderr).toContain(`berth ${newer.version} reads formats up to 1.`);
    } finally {
      await vm.sshOk(`printf '%s\\n' '${format}' > /var/lib/berth/state-format`);
    }
    expect(await installed()).toBe(`${old.version} ii`);
    expect(await vm.berthdPid()).toBe(berthd);
    await expectContainerUntouched();
  });

  it('apt-get remove stops berthd alone and keeps the configuration; purge removes it; the containers run on', async () => {
    await vm.sshOk('apt-get remove -y -q berth');
    expect((await vm.ssh('systemctl is-active berth')).stdout.trim()).toBe('inactive');
    expect((await vm.ssh('systemctl is-enabled berth')).code).not.toBe(0);
    expect(await installed()).toBe(`${vm.debs.installed.version} rc`);
    expect((await vm.ssh('test -e /usr/bin/berthd')).code).toBe(1);
    expect((await vm.sshOk('ls /etc/berth')).split('\n')).toContain('berth.toml');
    expect((await vm.ssh(`kill -0 ${pid}`)).code).toBe(0);

    await vm.sshOk('apt-get purge -y -q berth');
    expect(await installed()).toBe('');
    expect((await vm.ssh('test -e /etc/berth || test -e /etc/crictl.yaml || test -e /etc/cni/net.d/10-berth.conflist')).code).toBe(1);
    // What berth made stays for the operator: the state, and the running container, still logging.
    expect((await vm.ssh('test -s /var/lib/berth/state-format')).code).toBe(0);
    expect((await vm.ssh(`kill -0 ${pid}`)).code).toBe(0);
    const before = await ticks();
    await until('the container to log on without berthd', async () => ((await ticks()) > before + 2 ? true : undefined), 60_000);
  });

  it("the release bundle's install takes over: berthd from /opt/berth adopts the running container", async () => {
    const out = await vm.sshOk('mkdir -p /opt/berth && mount --bind /mnt/stage/opt/berth /opt/berth && /opt/berth/install', { timeoutMs: 300_000 });
    expect(out).toContain('berth.service is running');
    await vm.waitCri();
    expect((await vm.sshOk('systemctl show -p ExecStart --value berth'))).toContain('/opt/berth/node/bin/node');
    expect((await rt().Version({ version: 'v1' })).runtime_version).toBe(vm.debs.installed.version);
    await expectContainerUntouched();
    await rt().RemovePodSandbox({ pod_sandbox_id: podId });
    expect((await rt().ListContainers({})).containers).toEqual([]);
    expect((await vm.ssh(`kill -0 ${pid}`)).code).not.toBe(0);
  });
});
