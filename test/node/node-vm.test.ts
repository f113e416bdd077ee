// The node VM (test/support/node-vm.ts): a real Debian 12 node with systemd as PID 1 on pure cgroup v2,
// berth installed by hack/install.sh --prebuilt and running as berth.service; driven from the host over
// loopback-only forwards. One boot for the whole file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { startNodeVmWithRegistry, type NodeVm, type NodeVmWithRegistry } from '../support/node-vm';

// Generous: a fresh machine builds the image first (~80 s), and every guest step runs under TCG.
const VM_TIMEOUT = 600_000;

describe('node VM: systemd, cgroup v2, berth.service', { timeout: 180_000 }, () => {
  let env: NodeVmWithRegistry | undefined;
  let vm: NodeVm;
  let image: string;

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

  beforeAll(async () => {
    env = await startNodeVmWithRegistry({ log: (l) => console.log(`[node-vm] ${l}`) });
    ({ vm, image } = env);
    console.log(`[node-vm] timings ${JSON.stringify(vm.timings)}`);
  }, VM_TIMEOUT);

  afterAll(async () => {
    await env?.stop();
  }, 120_000);

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
    expect(props).toContain('/opt/berth/node/bin/node --max-semi-space-size=2 /opt/berth/dist/src/main.js --log-format json');
    const verify = await vm.ssh('systemd-analyze verify /etc/systemd/system/berth.service');
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
    expect(config.linux?.cgroup_driver).toBeDefined();
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
    expect(monitors.length).toBeGreaterThan(0);
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
