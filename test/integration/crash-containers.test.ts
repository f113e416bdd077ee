// Crash consistency of containers: berthd killed (SIGKILL, through BERTH_FAILPOINTS) between any two
// side effects of CreateContainer, StartContainer or RemoveContainer; restarted on the same dirs, it
// reconciles, the kubelet's usual calls succeed, and nothing is left once the pod is removed. And a
// container whose monitor is killed is reported exited, killed, and removable.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { controllerDir } from '../../src/cgroups/layout';
import { exitOf, startBerthd, type BerthdHandle } from '../support/berthd';
import { startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';
import { until } from '../support/until';

const tag = `${process.pid % 10000}`;
const bridge = `bcrc${tag}`;
const SUBNET = `10.128.${process.pid % 250}`;
const HANDLER = 'berth';

const CREATE_FAILPOINTS = [
  'container.after-record',
  'container.after-dirs',
  'container.after-mount',
  'container.after-bundle',
  'container.after-monitor',
  'container.before-created',
];
const START_FAILPOINTS = ['container.start.before-start', 'container.start.after-start'];
const REMOVE_FAILPOINTS = ['container.remove.after-marking', 'container.remove.after-runtime-delete', 'container.remove.after-unmount'];

type Pod = { id: string; config: PodSandboxConfig };

describe('containers across crashes of berthd (berth runtime)', () => {
  let env: PodDaemon | undefined;
  let berthd: BerthdHandle;
  let image: string;
  let dir: string;
  let args: string[];

  const rt = () => berthd.client.runtime;

  beforeAll(async () => {
    env = await startPodDaemon('berth-crash-ctr', { name: `crc${tag}`, bridge, subnet: SUBNET });
    ({ image, berthd } = env);
    dir = env.dir;
    args = ['--cni-conf-dir', env.network.confDir];
  }, 60_000);

  afterAll(() => stopPodDaemon(env, berthd));

  async function restart(extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
    await berthd.stop('SIGTERM');
    berthd.client.close();
    berthd = await startBerthd({ dir: berthd.dir, args, env: extraEnv });
  }

  async function runPod(name: string): Promise<Pod> {
    const config: PodSandboxConfig = {
      metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 },
      hostname: name,
      log_directory: path.join(dir, 'logs', name),
    };
    return { id: (await rt().RunPodSandbox({ config, runtime_handler: HANDLER })).pod_sandbox_id, config };
  }

  const ctrConfig = (name: string, script: string): ContainerConfig => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['sh', '-c', script],
    log_path: `${name}.log`,
  });

  const create = async (pod: Pod, config: ContainerConfig) => (await rt().CreateContainer({ pod_sandbox_id: pod.id, config, sandbox_config: pod.config })).container_id;
  const status = async (id: string) => (await rt().ContainerStatus({ container_id: id })).status!;
  const verbose = async (id: string) => JSON.parse((await rt().ContainerStatus({ container_id: id, verbose: true })).info.info) as { pid: number; monitorPid: number; cgroup: string };
  const podCgroup = async (pod: Pod) => (JSON.parse((await rt().PodSandboxStatus({ pod_sandbox_id: pod.id, verbose: true })).info.info) as { cgroup: string }).cgroup;

  /** Waits for berthd to die of the failpoint's SIGKILL, then starts it again on the same dirs. */
  async function afterCrash(): Promise<void> {
    await exitOf(berthd.process);
    expect(berthd.process.signalCode).toBe('SIGKILL');
    berthd.client.close();
    berthd = await startBerthd({ dir: berthd.dir, args });
  }

  const monitorsOf = (state: string): number[] =>
    fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
          const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
          // A zombie has an empty cmdline; only live processes count.
          return cmd.includes(`${state}/containers/`) && !/\) [ZX] /.test(st);
        } catch {
          return false;
        }
      })
      .map(Number);

  /** Nothing of any container is left: records, dirs, mounts, runtime state, monitors, container cgroups. */
  async function assertNothingLeft(podCg: string, podId: string): Promise<void> {
    const records = fs.readdirSync(path.join(berthd.root, 'containers')).filter((n) => n.endsWith('.json'));
    expect(records).toEqual([]);
    expect(fs.readdirSync(path.join(berthd.root, 'containers')).filter((n) => n !== 'empty')).toEqual([]);
    expect(fs.readdirSync(path.join(berthd.state, 'containers'))).toEqual([]);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(`${berthd.state}/containers/`));
    expect(mounts).toEqual([]);
    const runtimeRoot = path.join(berthd.state, 'runtime', HANDLER);
    expect((fs.existsSync(runtimeRoot) ? fs.readdirSync(runtimeRoot) : []).filter((n) => /^[a-f0-9]{64}$/.test(n))).toEqual([]);
    expect(fs.readdirSync(path.join(berthd.state, 'exits'))).toEqual([]);
    await until('monitors to be gone', () => monitorsOf(berthd.state).length === 0, 5000);
    // Only the pod's own init leaf is below the pod cgroup.
    const memDir = controllerDir('memory', podCg)!;
    expect(fs.readdirSync(memDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)).toEqual([podId]);
  }

  /** The kubelet after a restart: stop and remove what is listed, then the pod, which must succeed. */
  async function cleanUpLikeKubelet(pod: Pod): Promise<void> {
    const podCg = await podCgroup(pod);
    for (const c of (await rt().ListContainers({ filter: { pod_sandbox_id: pod.id } })).containers) {
      await rt().StopContainer({ container_id: c.id, timeout: 0 });
      await rt().RemoveContainer({ container_id: c.id });
    }
    await assertNothingLeft(podCg, pod.id);
    await rt().StopPodSandbox({ pod_sandbox_id: pod.id });
    await rt().RemovePodSandbox({ pod_sandbox_id: pod.id });
    expect(fs.existsSync(controllerDir('memory', podCg)!)).toBe(false);
  }

  it.each(CREATE_FAILPOINTS)('CreateContainer cut at %s is rolled back', async (fp) => {
    await restart({ BERTH_FAILPOINTS: `${fp}=crash` });
    const pod = await runPod(`c-${fp.split('.').pop()}`);
    await expect(create(pod, ctrConfig('main', 'sleep 60'))).rejects.toThrow();
    await afterCrash();
    expect(berthd.output()).toContain('"repair":"container-rolled-back"');
    // The kubelet sees no container and retries the create, which works.
    expect((await rt().ListContainers({ filter: { pod_sandbox_id: pod.id } })).containers).toEqual([]);
    const id = await create(pod, ctrConfig('main', 'sleep 60'));
    await rt().StartContainer({ container_id: id });
    expect((await status(id)).state).toBe('CONTAINER_RUNNING');
    await cleanUpLikeKubelet(pod);
  }, 60_000);

  it.each(START_FAILPOINTS)('StartContainer cut at %s leaves a container the kubelet can start or remove', async (fp) => {
    await restart({ BERTH_FAILPOINTS: `${fp}=crash` });
    const pod = await runPod(`s-${fp.split('.').pop()}`);
    const id = await create(pod, ctrConfig('main', 'sleep 60'));
    await expect(rt().StartContainer({ container_id: id })).rejects.toThrow();
    await afterCrash();
    const st = await status(id);
    if (fp === 'container.start.before-start') {
      expect(st.state).toBe('CONTAINER_CREATED');
      await rt().StartContainer({ container_id: id });
    }
    expect((await status(id)).state).toBe('CONTAINER_RUNNING');
    await cleanUpLikeKubelet(pod);
  }, 60_000);

  it.each(REMOVE_FAILPOINTS)('RemoveContainer cut at %s is completed', async (fp) => {
    await restart({ BERTH_FAILPOINTS: `${fp}=crash` });
    const pod = await runPod(`r-${fp.split('.').pop()}`);
    const id = await create(pod, ctrConfig('main', 'sleep 60'));
    await rt().StartContainer({ container_id: id });
    await expect(rt().RemoveContainer({ container_id: id })).rejects.toThrow();
    await afterCrash();
    expect(berthd.output()).toContain('"repair":"container-removal-completed"');
    // The kubelet retries: removing what is gone succeeds.
    await rt().RemoveContainer({ container_id: id });
    await cleanUpLikeKubelet(pod);
  }, 60_000);

  it('a container whose monitor is killed is reported exited, killed, and removable', async () => {
    await restart();
    const pod = await runPod('dead-monitor');
    const id = await create(pod, ctrConfig('main', 'echo before; sleep 600'));
    await rt().StartContainer({ container_id: id });
    await until('output', () => fs.existsSync(path.join(pod.config.log_directory!, 'main.log')) && fs.readFileSync(path.join(pod.config.log_directory!, 'main.log'), 'utf8').includes('before'));
    const { pid, monitorPid } = await verbose(id);
    process.kill(monitorPid, 'SIGKILL');
    const st = await until('the container to be reported exited', async () => {
      const s = await status(id);
      return s.state === 'CONTAINER_EXITED' && s;
    });
    expect(st).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 255, reason: 'Error' });
    expect(st.message).toMatch(/monitor/);
    // The container was killed (on this host PID 1 does not reap: its init may stay a zombie of PID 1).
    await until('the container to die', () => !fs.existsSync(`/proc/${pid}`) || /\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 5000);
    // The monitor was berthd's child: reaped, not a zombie.
    await until('the monitor to be reaped', () => !fs.existsSync(`/proc/${monitorPid}`), 5000);
    expect(fs.readFileSync(path.join(pod.config.log_directory!, 'main.log'), 'utf8')).toContain('before');
    await cleanUpLikeKubelet(pod);
  }, 60_000);

  it('a monitor killed while berthd is down: the container is reported exited and killed after the restart', async () => {
    const pod = await runPod('dead-monitor-down');
    const id = await create(pod, ctrConfig('main', 'echo before; sleep 600'));
    await rt().StartContainer({ container_id: id });
    const { pid, monitorPid } = await verbose(id);
    await berthd.stop('SIGKILL');
    process.kill(monitorPid, 'SIGKILL');
    berthd.client.close();
    berthd = await startBerthd({ dir: berthd.dir, args });
    expect(await status(id)).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 255, reason: 'Error' });
    await until('the container to die', () => !fs.existsSync(`/proc/${pid}`) || /\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 5000);
    await cleanUpLikeKubelet(pod);
  }, 60_000);

  it('sweeps what a container without a record left: dirs, a mount, an exit file', async () => {
    const id = 'e'.repeat(64);
    await berthd.stop('SIGKILL');
    const rootfs = path.join(berthd.state, 'containers', id, 'bundle', 'rootfs');
    fs.mkdirSync(rootfs, { recursive: true });
    fs.mkdirSync(path.join(berthd.root, 'containers', id, 'fs', 'upper'), { recursive: true });
    fs.writeFileSync(path.join(berthd.state, 'exits', `${id}.json`), '{}');
    execFileSync('mount', ['-t', 'tmpfs', 'orphan', rootfs]);
    berthd.client.close();
    berthd = await startBerthd({ dir: berthd.dir, args });
    const out = berthd.output();
    for (const kind of ['container-orphan-state-dir', 'container-orphan-dir', 'container-orphan-mount', 'container-orphan-exit-file']) expect(out).toContain(`"repair":"${kind}"`);
    expect(fs.existsSync(path.join(berthd.state, 'containers', id))).toBe(false);
    expect(fs.existsSync(path.join(berthd.root, 'containers', id))).toBe(false);
    expect(fs.existsSync(path.join(berthd.state, 'exits', `${id}.json`))).toBe(false);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(rootfs);
  }, 60_000);
});
