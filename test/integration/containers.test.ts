// Containers end to end: a real berthd, a real registry, real CNI plugins and an OCI runtime.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { cgroupLayout, controllerDir } from '../../src/cgroups/layout';
import { startBerthd, type BerthdHandle } from '../support/berthd';
import { startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';
import { freePort } from '../support/ports';
import { pidsWithCmdline } from '../support/procs';
import { until } from '../support/until';

const tag = `${process.pid % 10000}`;
const bridge = `bctr${tag}`;
// Per run, so that a bridge another run left behind cannot take this run's route.
const SUBNET = `10.125.${process.pid % 250}`;
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (P|F) (.*)$/;

/** Every lifecycle test runs with berth's own runtime and with runc: the two must agree. */
const HANDLERS = ['berth', 'runc'];

describe.each(HANDLERS)('containers (%s runtime)', (handler) => {
  let env: PodDaemon | undefined;
  let berthd: BerthdHandle;
  let dir: string;
  let image: string;

  const podConfig = (name: string, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig => ({
    metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: path.join(dir, 'logs', name),
    labels: { app: name },
    ...extra,
  });

  const ctrConfig = (name: string, script: string, extra: Partial<ContainerConfig> = {}): ContainerConfig => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['sh', '-c', script],
    log_path: `${name}.log`,
    labels: { ctr: name },
    ...extra,
  });

  const rt = () => berthd.client.runtime;

  async function runPod(name: string, extra: Partial<PodSandboxConfig> = {}): Promise<{ id: string; config: PodSandboxConfig }> {
    const config = podConfig(name, extra);
    const id = (await rt().RunPodSandbox({ config, runtime_handler: handler })).pod_sandbox_id;
    return { id, config };
  }

  async function create(pod: { id: string; config: PodSandboxConfig }, config: ContainerConfig): Promise<string> {
    return (await rt().CreateContainer({ pod_sandbox_id: pod.id, config, sandbox_config: pod.config })).container_id;
  }

  async function run(pod: { id: string; config: PodSandboxConfig }, config: ContainerConfig): Promise<string> {
    const id = await create(pod, config);
    await rt().StartContainer({ container_id: id });
    return id;
  }

  const status = async (id: string) => (await rt().ContainerStatus({ container_id: id })).status!;

  const waitExited = (id: string, ms = 15_000) =>
    until(`container ${id} to exit`, async () => {
      const s = await status(id);
      return s.state === 'CONTAINER_EXITED' && s;
    }, ms);

  const logRecords = (pod: { config: PodSandboxConfig }, name: string) =>
    fs
      .readFileSync(path.join(pod.config.log_directory!, `${name}.log`), 'utf8')
      .trimEnd()
      .split('\n')
      // A terminal's lines end in \r\n: the \r is part of the logged content.
      .map((l) => LOG_LINE.exec(l.replace(/\r$/, ''))?.slice(1) ?? [l]);
  const stdoutOf = (pod: { config: PodSandboxConfig }, name: string) =>
    logRecords(pod, name)
      .filter((r) => r[0] === 'stdout')
      .map((r) => r[2])
      .join('\n');
  /** The stdout logged so far, or false while there is no log. */
  const logged = (pod: { config: PodSandboxConfig }, name: string) => fs.existsSync(path.join(pod.config.log_directory!, `${name}.log`)) && stdoutOf(pod, name);

  beforeAll(async () => {
    env = await startPodDaemon('berth-ctr', { name: `ctr${tag}`, bridge, subnet: SUBNET });
    ({ dir, image, berthd } = env);
  }, 60_000);

  afterAll(() => stopPodDaemon(env, berthd));

  it("runs a privileged container only in a privileged pod: the host's capabilities and devices", async () => {
    const plain = await runPod('unpriv');
    const refused = await create(plain, ctrConfig('priv', 'true', { linux: { security_context: { privileged: true } } })).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(refused).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('its pod is not') });
    const pod = await runPod('priv', { linux: { security_context: { privileged: true } } });
    await run(pod, ctrConfig('priv', 'grep CapEff /proc/self/status; test -c /dev/kmsg && echo host-devices; echo done', { linux: { security_context: { privileged: true } } }));
    await until('the privileged container to finish', () => (logged(pod, 'priv') || '').includes('done'));
    const hostBounding = /^CapBnd:\s+(\w+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
    expect(stdoutOf(pod, 'priv').split('\n').map((l) => l.replace(/\s+/g, ' '))).toEqual([`CapEff: ${hostBounding}`, 'host-devices', 'done']);
  });

  it('runs a container: created, running, exited with its code, logs in the CRI format', async () => {
    const pod = await runPod('life');
    const id = await create(pod, ctrConfig('main', 'echo hello; echo oops >&2; sleep 0.3; exit 3'));
    expect((await status(id)).state).toBe('CONTAINER_CREATED');
    await rt().StartContainer({ container_id: id });
    expect((await status(id)).state).toBe('CONTAINER_RUNNING');
    const s = await waitExited(id);
    expect(s).toMatchObject({ exit_code: 3, reason: 'Error', log_path: path.join(pod.config.log_directory!, 'main.log') });
    expect(BigInt(s.finished_at)).toBeGreaterThan(BigInt(s.started_at));
    expect(BigInt(s.started_at)).toBeGreaterThanOrEqual(BigInt(s.created_at));
    expect(logRecords(pod, 'main')).toEqual(expect.arrayContaining([['stdout', 'F', 'hello'], ['stderr', 'F', 'oops']]));
    const ok = await run(pod, ctrConfig('ok', 'true'));
    expect(await waitExited(ok)).toMatchObject({ exit_code: 0, reason: 'Completed' });
  });

  it('gives a tty container a terminal whose output is logged', async () => {
    const pod = await runPod('tty');
    const id = await run(pod, ctrConfig('term', 'tty; [ -t 0 ] && echo stdin-is-tty; exit 4', { tty: true, stdin: true }));
    expect(await waitExited(id)).toMatchObject({ exit_code: 4 });
    const out = stdoutOf(pod, 'term');
    expect(out).toMatch(/\/dev\/pts\/\d+/);
    expect(out).toContain('stdin-is-tty');
  });

  it('makes a recursive read-only mount read-only below it too, where the handler can (berth), and refuses it where not (runc)', async () => {
    // A host dir with a tmpfs mounted below it: a plain read-only bind leaves that tmpfs writable.
    const host = fs.mkdtempSync(path.join(dir, 'rro-'));
    fs.mkdirSync(path.join(host, 'tmpfs'));
    execFileSync('mount', ['-t', 'tmpfs', 'none', path.join(host, 'tmpfs')]);
    try {
      const pod = await runPod(`rro-${handler}`);
      const touch = 'touch /mnt/tmpfs/file 2>&1; echo "rc=$?"; sleep 30';
      const plain = await run(pod, ctrConfig('plain', touch, { mounts: [{ host_path: host, container_path: '/mnt', readonly: true }] }));
      const recursive = { mounts: [{ host_path: host, container_path: '/mnt', readonly: true, recursive_read_only: true }] };
      await until('the plain container to write', () => stdoutOf(pod, 'plain').includes('rc='));
      expect(stdoutOf(pod, 'plain')).toContain('rc=0');
      expect((await status(plain)).mounts[0]).toMatchObject({ readonly: true, recursive_read_only: false });
      if (handler === 'berth') {
        const rro = await run(pod, ctrConfig('rro', touch, recursive));
        await until('the rro container to try', () => stdoutOf(pod, 'rro').includes('rc='));
        expect(stdoutOf(pod, 'rro')).toMatch(/Read-only file system[\s\S]*rc=1/);
        expect((await status(rro)).mounts[0]).toMatchObject({ readonly: true, recursive_read_only: true });
      } else {
        await expect(create(pod, ctrConfig('rro', touch, recursive))).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(/recursive read-only/) });
      }
      await expect(create(pod, ctrConfig('rrorw', touch, { mounts: [{ host_path: host, container_path: '/mnt', readonly: false, recursive_read_only: true }] }))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      await expect(
        create(pod, ctrConfig('rroprop', touch, { mounts: [{ host_path: host, container_path: '/mnt', readonly: true, recursive_read_only: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }] })),
      ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      await rt().StopPodSandbox({ pod_sandbox_id: pod.id });
      await rt().RemovePodSandbox({ pod_sandbox_id: pod.id });
    } finally {
      execFileSync('umount', [path.join(host, 'tmpfs')]);
    }
  });

  it('raises ambient capabilities for a non-root user, and reports the stop signal', async () => {
    const pod = await runPod('ambient');
    const caps = { run_as_user: { value: 1000 }, capabilities: { add_capabilities: ['NET_BIND_SERVICE'], drop_capabilities: [], add_ambient_capabilities: ['CAP_NET_BIND_SERVICE'] } };
    const id = await run(pod, ctrConfig('amb', 'grep CapAmb /proc/self/status; sleep 30', { linux: { security_context: caps }, stop_signal: 'SIGINT' }));
    await until('the capabilities to be logged', () => (logged(pod, 'amb') || '').includes('CapAmb'));
    // CAP_NET_BIND_SERVICE is bit 10.
    expect(stdoutOf(pod, 'amb')).toMatch(/CapAmb:\s+0000000000000400/);
    expect((await status(id)).stop_signal).toBe('SIGINT');
    const plain = await run(pod, ctrConfig('plainsig', 'sleep 30'));
    expect((await status(plain)).stop_signal).toBe('SIGTERM');
    await expect(create(pod, ctrConfig('ambbad', 'true', { linux: { security_context: { capabilities: { add_capabilities: [], drop_capabilities: [], add_ambient_capabilities: ['CAP_SYS_ADMIN'] } } } }))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/ambient capability CAP_SYS_ADMIN/),
    });
    await rt().StopPodSandbox({ pod_sandbox_id: pod.id });
    await rt().RemovePodSandbox({ pod_sandbox_id: pod.id });
  });

  it('applies args, env, working dir, user and groups, and the image config', async () => {
    const pod = await runPod('proc');
    await run(pod, ctrConfig('id', 'echo "$(pwd) $GREETING $HOSTNAME"; id; echo "args $0 $1"', {
      args: ['first', 'second'],
      working_dir: '/tmp',
      envs: [{ key: 'GREETING', value: Buffer.from('hi') }],
      linux: { security_context: { run_as_user: { value: 1000 }, supplemental_groups: [4242] } },
    }));
    const id = (await rt().ListContainers({ filter: { pod_sandbox_id: pod.id } })).containers[0].id;
    await waitExited(id);
    const out = stdoutOf(pod, 'id');
    expect(out).toContain('/tmp hi proc');
    expect(out).toMatch(/uid=1000\(berth\) gid=1000\(berth\) groups=.*50000\(extra\)/);
    expect(out).toContain('4242');
    expect(out).toContain('args first second');
    const st = await status(id);
    expect(st.user?.linux).toMatchObject({ uid: '1000', gid: '1000' });
  });

  it('stops a running container with its signal, then SIGKILL; stop and remove are idempotent', async () => {
    const pod = await runPod('stop');
    const polite = await run(pod, ctrConfig('polite', 'trap "echo bye; exit 0" TERM; echo ready; while true; do sleep 0.1; done'));
    const stubborn = await run(pod, ctrConfig('stubborn', 'trap "" TERM; echo ready; while true; do sleep 0.1; done'));
    // Each says "ready" once its trap is set: a TERM before that would kill it with 143.
    await until('both traps to be set', () => logged(pod, 'polite') === 'ready' && logged(pod, 'stubborn') === 'ready');
    await rt().StopContainer({ container_id: polite, timeout: 10 });
    expect(await status(polite)).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 0 });
    expect(stdoutOf(pod, 'polite')).toBe('ready\nbye');
    const t0 = Date.now();
    await rt().StopContainer({ container_id: stubborn, timeout: 1 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(await status(stubborn)).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 137 });
    await rt().StopContainer({ container_id: stubborn, timeout: 1 });
    await rt().RemoveContainer({ container_id: stubborn });
    await rt().RemoveContainer({ container_id: stubborn });
    await expect(status(stubborn)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    // Stopping a removed container is not an error either (critest v1.32: "should not return an error if not found").
    await expect(rt().StopContainer({ container_id: stubborn, timeout: 1 })).resolves.toEqual({});
  });

  it('lists with every filter', async () => {
    const pod = await runPod('list');
    const a = await run(pod, ctrConfig('a', 'sleep 30'));
    const b = await create(pod, ctrConfig('b', 'true'));
    const list = async (filter: object) => (await rt().ListContainers({ filter })).containers.map((c) => c.id).sort();
    expect(await list({ pod_sandbox_id: pod.id })).toEqual([a, b].sort());
    expect(await list({ id: a.slice(0, 12) })).toEqual([a]);
    expect(await list({ pod_sandbox_id: pod.id, state: { state: 'CONTAINER_RUNNING' } })).toEqual([a]);
    expect(await list({ pod_sandbox_id: pod.id, state: { state: 'CONTAINER_CREATED' } })).toEqual([b]);
    expect(await list({ label_selector: { ctr: 'b' }, pod_sandbox_id: pod.id })).toEqual([b]);
    const item = (await rt().ListContainers({ filter: { id: a } })).containers[0];
    expect(item).toMatchObject({ pod_sandbox_id: pod.id, metadata: { name: 'a', attempt: 0 }, image: { image }, labels: { ctr: 'a' } });
    expect(item.image_id).toMatch(/^sha256:/);
  });

  it('ExecSync returns output and exit code, and kills the command at its timeout', async () => {
    const pod = await runPod('exec');
    const id = await run(pod, ctrConfig('main', 'sleep 60'));
    const res = await rt().ExecSync({ container_id: id, cmd: ['sh', '-c', 'echo out; echo err >&2; exit 5'], timeout: 10 });
    expect(res.stdout.toString()).toBe('out\n');
    expect(res.stderr.toString()).toBe('err\n');
    expect(res.exit_code).toBe(5);
    const t0 = Date.now();
    await expect(rt().ExecSync({ container_id: id, cmd: ['sh', '-c', 'touch /tmp/started; sleep 30'], timeout: 1 })).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    // Only a hang guard: the command would run 30 s, so well under that means it was cut at its timeout.
    expect(Date.now() - t0).toBeLessThan(20_000);
    // Gone, not even a zombie: its runtime reaped it.
    const ps = await rt().ExecSync({ container_id: id, cmd: ['ps', '-o', 'stat,args'], timeout: 10 });
    expect(ps.stdout.toString()).not.toMatch(/sleep 30|\[sleep\]|^\s*Z/m);
  });

  it('readonly rootfs, capabilities, masked paths and seccomp', async () => {
    const pod = await runPod('sec');
    const script = 'touch /x 2>/dev/null && echo rw || echo ro; grep CapEff /proc/self/status; echo "keys=$(cat /proc/keys 2>&1 | head -c 40)"; echo "firmware=$(ls /sys/firmware | wc -l)"; unshare -U true 2>/dev/null && echo unshare-ok || echo unshare-denied';
    await run(pod, ctrConfig('locked', script, {
      linux: {
        security_context: {
          readonly_rootfs: true,
          capabilities: { drop_capabilities: ['ALL'], add_capabilities: ['NET_BIND_SERVICE'] },
          seccomp: { profile_type: 'RuntimeDefault' },
        },
      },
    }));
    const id = (await rt().ListContainers({ filter: { pod_sandbox_id: pod.id } })).containers[0].id;
    await waitExited(id);
    const out = stdoutOf(pod, 'locked');
    expect(out).toContain('ro');
    expect(out).toMatch(/CapEff:\s+0000000000000400/);
    expect(out).toMatch(/^keys=$/m);
    expect(out).toMatch(/^firmware=0$/m);
    expect(out).toContain('unshare-denied');
  });

  it('kills a container over its memory limit and reports OOMKilled', async () => {
    const pod = await runPod('oom');
    const id = await run(pod, ctrConfig('hog', 'x=a; while true; do x="$x$x"; done', { linux: { resources: { memory_limit_in_bytes: 32 << 20 } } }));
    const s = await waitExited(id, 30_000);
    expect(s.reason).toBe('OOMKilled');
    expect(s.exit_code).toBe(137);
  });

  it('two containers of a pod share localhost, IPC and (with a pod PID namespace) processes', async () => {
    const pod = await runPod('share', { linux: { security_context: { namespace_options: { pid: 'POD' } } } });
    const server = await run(pod, ctrConfig('server', 'nc -l -p 8080 -e echo pong & mkfifo /dev/shm/x 2>/dev/null; sleep 61'));
    const client = await run(pod, ctrConfig('client', 'sleep 60'));
    // The server answers one connection: until it listens, a connect is refused and the client tries again.
    const reply = await until('the server to answer', async () => {
      const r = await rt().ExecSync({ container_id: client, cmd: ['sh', '-c', 'nc 127.0.0.1 8080 </dev/null'], timeout: 10 });
      return r.exit_code === 0 && r.stdout.toString();
    });
    expect(reply.trim()).toBe('pong');
    const shm = await until('the fifo', async () => {
      const r = (await rt().ExecSync({ container_id: client, cmd: ['ls', '/dev/shm'], timeout: 10 })).stdout.toString();
      return r.trim() !== '' && r;
    });
    expect(shm.trim()).toBe('x');
    const ps = await rt().ExecSync({ container_id: client, cmd: ['ps', '-o', 'args'], timeout: 10 });
    expect(ps.stdout.toString()).toContain('sleep 61');
    expect(server).not.toBe(client);
  });

  it('reaches a container through a hostPort', async () => {
    const hostPort = await freePort();
    const pod = await runPod('port', { port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: hostPort }] });
    await run(pod, ctrConfig('web', 'while true; do nc -l -p 80 -e echo served; done'));
    // Through the host port on the host's own address on the bridge (portmap's DNAT for local traffic),
    // again until the container's nc listens.
    const out = await until('an answer through the host port', () => {
      try {
        return execFileSync('sh', ['-c', `busybox nc -w 3 ${SUBNET}.1 ${hostPort} </dev/null`], { encoding: 'utf8' });
      } catch {
        return undefined;
      }
    });
    expect(out.trim()).toBe('served');
  });

  it('updates resources live, reports stats, and reopens the log', async () => {
    const pod = await runPod('res');
    const id = await run(pod, ctrConfig('main', 'while true; do echo tick; sleep 0.2; done', { linux: { resources: { memory_limit_in_bytes: 64 << 20 } } }));
    const st = await status(id);
    const cgroup = (JSON.parse((await rt().ContainerStatus({ container_id: id, verbose: true })).info.info) as { cgroup: string }).cgroup;
    const memDir = controllerDir('memory', cgroup)!;
    const limitFile = fs.existsSync(path.join(memDir, 'memory.limit_in_bytes')) ? 'memory.limit_in_bytes' : 'memory.max';
    expect(Number(fs.readFileSync(path.join(memDir, limitFile), 'utf8'))).toBe(64 << 20);
    await rt().UpdateContainerResources({ container_id: id, linux: { memory_limit_in_bytes: 96 << 20, cpu_shares: 512 } });
    expect(Number(fs.readFileSync(path.join(memDir, limitFile), 'utf8'))).toBe(96 << 20);
    expect((await status(id)).resources?.linux?.memory_limit_in_bytes).toBe(String(96 << 20));
    expect(st.resources?.linux?.memory_limit_in_bytes).toBe(String(64 << 20));
    // A field an update leaves unset keeps its value, in the cgroup and in ContainerStatus alike.
    await rt().UpdateContainerResources({ container_id: id, linux: { cpu_shares: 256 } });
    expect(Number(fs.readFileSync(path.join(memDir, limitFile), 'utf8'))).toBe(96 << 20);
    const afterPartial = (await status(id)).resources?.linux;
    expect([afterPartial?.memory_limit_in_bytes, afterPartial?.cpu_shares]).toEqual([String(96 << 20), '256']);

    const stats = (await rt().ContainerStats({ container_id: id })).stats!;
    expect(Number(stats.memory?.working_set_bytes?.value)).toBeGreaterThan(0);
    expect(Number(stats.cpu?.usage_core_nano_seconds?.value)).toBeGreaterThan(0);
    expect(stats.attributes?.id).toBe(id);
    // Swap: reported where the host accounts it (v2's memory.swap.current, or v1's memsw files).
    const swapAccounted = fs.existsSync(path.join(memDir, fs.existsSync(path.join(memDir, 'memory.current')) ? 'memory.swap.current' : 'memory.memsw.usage_in_bytes'));
    expect(stats.swap?.swap_usage_bytes !== undefined && stats.swap !== null).toBe(swapAccounted);
    const listed = (await rt().ListContainerStats({ filter: { pod_sandbox_id: pod.id } })).stats;
    expect(listed.map((s) => s.attributes?.id)).toEqual([id]);
    const podStats = (await rt().PodSandboxStats({ pod_sandbox_id: pod.id })).stats!;
    expect(podStats.linux?.network?.interfaces?.map((i) => i.name)).toContain('eth0');
    expect(podStats.linux?.containers?.map((c) => c.attributes?.id)).toEqual([id]);

    const log = path.join(pod.config.log_directory!, 'main.log');
    fs.renameSync(log, `${log}.1`);
    await rt().ReopenContainerLog({ container_id: id });
    await until('a tick in the reopened log', () => fs.existsSync(log) && /stdout F tick/.test(fs.readFileSync(log, 'utf8')));
    await rt().StopContainer({ container_id: id, timeout: 0 });
    await expect(rt().ReopenContainerLog({ container_id: id })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    // With nothing running in the pod its interfaces are read through nsenter, not a process of the pod.
    const idle = (await rt().PodSandboxStats({ pod_sandbox_id: pod.id })).stats!;
    expect(idle.linux?.network?.interfaces?.map((i) => i.name)).toContain('eth0');
    expect(Number(idle.linux?.network?.interfaces?.[0]?.rx_bytes?.value)).toBeGreaterThanOrEqual(Number(podStats.linux?.network?.interfaces?.[0]?.rx_bytes?.value));
  });

  it("lists pod stats with each pod's own running containers, in one answer", async () => {
    const a = await runPod('statsa', { labels: { group: 'pod-stats' } });
    const b = await runPod('statsb', { labels: { group: 'pod-stats' } });
    const a1 = await run(a, ctrConfig('a1', 'sleep 600'));
    const a2 = await run(a, ctrConfig('a2', 'sleep 600'));
    const b1 = await run(b, ctrConfig('b1', 'sleep 600'));
    const gone = await run(b, ctrConfig('b2', 'true'));
    await waitExited(gone);
    const { stats } = await rt().ListPodSandboxStats({ filter: { label_selector: { group: 'pod-stats' } } });
    const byPod = Object.fromEntries(stats.map((p) => [p.attributes?.id, (p.linux?.containers ?? []).map((c) => c.attributes?.id).sort()]));
    expect(byPod).toEqual({ [a.id]: [a1, a2].sort(), [b.id]: [b1] });
    for (const p of stats) expect(p.linux?.network?.interfaces?.map((i) => i.name)).toEqual(['eth0']);
  });

  it('refuses bad requests with clear errors and leaves nothing behind', async () => {
    const pod = await runPod('bad');
    await expect(create(pod, ctrConfig('noimage', 'true', { image: { image: 'nothere:1' } }))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(create(pod, ctrConfig('nogroup', 'true', { linux: { security_context: { run_as_group: { value: 5 } } } }))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(create(pod, ctrConfig('badseccomp', 'true', { linux: { security_context: { seccomp_profile_path: 'my-profile' } } }))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(rt().CreateContainer({ pod_sandbox_id: 'f'.repeat(64), config: ctrConfig('x', 'true') })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const missing = await create(pod, ctrConfig('nobinary', 'true', { command: ['/does/not/exist'] })).then(
      (id) => rt().StartContainer({ container_id: id }).then(() => id),
      (err: unknown) => err,
    );
    expect(missing).toBeInstanceOf(Error);
    const first = await create(pod, ctrConfig('dup', 'true'));
    await expect(create(pod, ctrConfig('dup', 'sleep 1'))).rejects.toMatchObject({ code: grpc.status.ALREADY_EXISTS });
    expect(await create(pod, ctrConfig('dup', 'true'))).toBe(first);
    const left = (await rt().ListContainers({ filter: { pod_sandbox_id: pod.id } })).containers.map((c) => c.metadata?.name).sort();
    expect(left.filter((n) => n !== 'nobinary')).toEqual(['dup']);
  });

  it('never writes a log outside the pod log directory: a climbing log_path and a symlink out are refused', async () => {
    const pod = await runPod('logescape');
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    fs.mkdirSync(pod.config.log_directory!, { recursive: true });
    await expect(create(pod, ctrConfig('climb', 'echo x', { log_path: '../../outside/climb.log' }))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/log_path/) });
    fs.symlinkSync(outside, path.join(pod.config.log_directory!, 'link'));
    await expect(create(pod, ctrConfig('viasymlink', 'echo x', { log_path: 'link/viasymlink.log' }))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/leads out of the pod's log directory/) });
    expect(fs.readdirSync(outside)).toEqual([]);
    expect((await rt().ListContainers({ filter: { pod_sandbox_id: pod.id } })).containers).toEqual([]);
    // The same name is free again: a refused request left nothing behind.
    await run(pod, ctrConfig('viasymlink', 'echo inside', { log_path: 'ok/viasymlink.log' }));
    await until('the log inside', () => fs.existsSync(path.join(pod.config.log_directory!, 'ok', 'viasymlink.log')));
  });

  it('stops and removes a pod with its containers, and an image in use is not freed', async () => {
    const pod = await runPod('gone');
    const id = await run(pod, ctrConfig('main', 'sleep 60'));
    await berthd.client.image.RemoveImage({ image: { image } });
    const st = await status(id);
    await rt().StopPodSandbox({ pod_sandbox_id: pod.id });
    expect((await status(id)).state).toBe('CONTAINER_EXITED');
    await rt().RemovePodSandbox({ pod_sandbox_id: pod.id });
    await expect(status(id)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const layers = fs.readdirSync(path.join(berthd.root, 'layers')).filter((n) => !n.startsWith('tmp-'));
    expect(st.image_id).toMatch(/^sha256:/);
    // The busybox image's one layer, kept for the container although its image went.
    expect(layers).toHaveLength(1);
    expect(fs.readdirSync(path.join(berthd.state, 'containers')).filter((n) => n === id)).toEqual([]);
    await berthd.client.image.PullImage({ image: { image } });
  });

  it('leaks nothing over many create/start/stop/remove cycles', async () => {
    const cycles = Number(process.env.BERTH_CONTAINER_CYCLES ?? '30');
    const pod = await runPod('cycles');
    const podCgroup = (JSON.parse((await rt().PodSandboxStatus({ pod_sandbox_id: pod.id, verbose: true })).info.info) as { cgroup: string }).cgroup;
    const fds = () => fs.readdirSync(`/proc/${berthd.process.pid}/fd`).length;
    const mounts = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(berthd.state)).length;
    const monitors = () => pidsWithCmdline(`${berthd.state}/containers/`).length;
    const warm = await run(pod, ctrConfig('warm', 'sleep 60'));
    await rt().RemoveContainer({ container_id: warm });
    const stateDirs = () => fs.readdirSync(path.join(berthd.state, 'containers')).sort();
    const rootEntries = () => fs.readdirSync(path.join(berthd.root, 'containers')).sort();
    const before = { fds: fds(), mounts: mounts(), monitors: monitors(), stateDirs: stateDirs(), rootEntries: rootEntries() };
    for (let i = 0; i < cycles; i++) {
      const id = await run(pod, ctrConfig(`c${i}`, 'sleep 60'));
      if (i % 2) await rt().StopContainer({ container_id: id, timeout: 0 });
      await rt().RemoveContainer({ container_id: id });
    }
    // A leak grows with the cycles; one or two fds come and go with gRPC connections, and on a busy
    // machine the last monitor may take a moment to go: measured until settled, for at most 5 s.
    const leaks = () => ({ extraFds: Math.max(0, fds() - before.fds - 2), mounts: mounts() - before.mounts, monitors: monitors() - before.monitors });
    const none = { extraFds: 0, mounts: 0, monitors: 0 };
    await until('the counts to settle', () => JSON.stringify(leaks()) === JSON.stringify(none), 5000).catch(() => undefined);
    expect(leaks()).toEqual(none);
    const memDir = controllerDir('memory', podCgroup)!;
    // Only the pod's own init leaf (named by the pod's id) stays below the pod cgroup.
    expect(fs.readdirSync(memDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)).toEqual([pod.id]);
    expect(stateDirs()).toEqual(before.stateDirs);
    expect(rootEntries()).toEqual(before.rootEntries);
    // The runtimes make container cgroups (and so the pod's) in every hierarchy, name=systemd and a
    // hybrid host's unified one included: removing the pod leaves the pod cgroup in none of them.
    await rt().RemovePodSandbox({ pod_sandbox_id: pod.id });
    expect(cgroupLayout().all.filter((root) => fs.existsSync(path.join(root, podCgroup)))).toEqual([]);
  }, 120_000);

  it('keeps containers running across kill -9 of berthd and reports an exit during the downtime', async () => {
    const pod = await runPod('crash');
    const long = await run(pod, ctrConfig('long', 'i=0; while true; do echo "n=$i"; i=$((i+1)); sleep 0.1; done'));
    const short = await run(pod, ctrConfig('short', 'sleep 1.5; exit 42'));
    const pid = (JSON.parse((await rt().ContainerStatus({ container_id: long, verbose: true })).info.info) as { pid: number }).pid;
    await berthd.stop('SIGKILL');
    // The exit during the downtime: its monitor writes the exit file.
    await until('short to exit while berthd is down', () => fs.existsSync(path.join(berthd.state, 'exits', `${short}.json`)));
    const before = stdoutOf(pod, 'long').split('\n').length;
    berthd = await startBerthd({ dir: berthd.dir, args: ['--cni-conf-dir', env!.network.confDir] });
    expect(await status(long)).toMatchObject({ state: 'CONTAINER_RUNNING' });
    expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
    expect(await status(short)).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 42 });
    await until('long to log on after the restart', () => stdoutOf(pod, 'long').split('\n').length > before);
    await rt().StopContainer({ container_id: long, timeout: 0 });
  }, 30_000);
});
