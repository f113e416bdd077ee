import { describe, expect, it } from 'vitest';
import { buildOciSpec, capabilities, processArgs, processEnv, updatedResources, type ContainerRequest, type PodView } from '../../src/container/oci-spec';
import { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS } from '../../src/container/defaults';

const request = (over: Partial<ContainerRequest> = {}): ContainerRequest => ({
  command: [],
  args: [],
  workingDir: '',
  env: [],
  mounts: [],
  tty: false,
  stdin: false,
  privileged: false,
  capabilities: { add: [], drop: [] },
  noNewPrivs: false,
  readonlyRootfs: false,
  seccomp: { kind: 'runtime-default' },
  pidNamespace: 'container',
  resources: {},
  ...over,
});

const pod: PodView = {
  hostname: 'web-0',
  netns: '/run/berth/ns/net/p',
  ipcns: '/run/berth/ns/ipc/p',
  utsns: '/run/berth/ns/uts/p',
  pidns: '/run/berth/ns/pid/p',
  files: { hostname: '/run/berth/pods/p/hostname', hosts: '/run/berth/pods/p/hosts', resolvConf: '/run/berth/pods/p/resolv.conf' },
  shm: '/run/berth/pods/p/shm',
  cgroupsPath: '/berth/p/c',
  minOomScoreAdj: -500,
};
const root = { uid: 0, gid: 0, additionalGids: [], home: '/root' };
const image = { Entrypoint: ['/entry'], Cmd: ['--default'], Env: ['PATH=/bin', 'A=image'], WorkingDir: '/work' };

describe('CRI to OCI spec', () => {
  it('keeps what a live update leaves unset (0, empty) and takes what it sets', () => {
    const current = { memoryLimit: 64 << 20, cpuShares: 512, cpusetCpus: '0', unified: { 'memory.high': '1' } };
    const next = updatedResources(current, { memoryLimit: 0, cpuShares: 256, cpusetCpus: '', unified: {}, hugepages: [] });
    expect(next).toEqual({ memoryLimit: 64 << 20, cpuShares: 256, cpusetCpus: '0', unified: { 'memory.high': '1' } });
  });

  it('applies the kubelet rules for command and args against ENTRYPOINT and CMD', () => {
    expect(processArgs({ command: [], args: [] }, image)).toEqual(['/entry', '--default']);
    expect(processArgs({ command: [], args: ['--mine'] }, image)).toEqual(['/entry', '--mine']);
    expect(processArgs({ command: ['/bin/sh'], args: [] }, image)).toEqual(['/bin/sh']);
    expect(processArgs({ command: ['/bin/sh'], args: ['-c', 'x'] }, image)).toEqual(['/bin/sh', '-c', 'x']);
    expect(() => processArgs({ command: [], args: [] }, {})).toThrow(/no command/);
  });

  it('puts the image env first, then the CRI env, with HOSTNAME and a default PATH', () => {
    expect(processEnv({ env: [['A', 'cri'], ['B', 'b']] }, image, 'web-0')).toEqual(['PATH=/bin', 'A=cri', 'HOSTNAME=web-0', 'B=b']);
    expect(processEnv({ env: [] }, {}, 'h')[0]).toMatch(/^PATH=\/usr\/local\/sbin/);
  });

  it('starts from the default capabilities, adding and dropping, ALL included', () => {
    expect(capabilities(request())).toEqual(expect.arrayContaining(DEFAULT_CAPABILITIES));
    expect(capabilities(request({ capabilities: { add: ['NET_ADMIN'], drop: ['CHOWN'] } }))).toContain('CAP_NET_ADMIN');
    expect(capabilities(request({ capabilities: { add: ['NET_ADMIN'], drop: ['CHOWN'] } }))).not.toContain('CAP_CHOWN');
    expect(capabilities(request({ capabilities: { add: ['KILL'], drop: ['ALL'] } }))).toEqual(['CAP_KILL']);
    expect(capabilities(request({ capabilities: { add: ['ALL'], drop: [] } }))).toContain('CAP_SYS_ADMIN');
    expect(capabilities(request({ privileged: true }))).toContain('CAP_SYS_ADMIN');
    expect(() => capabilities(request({ capabilities: { add: ['WIZARDRY'], drop: [] } }))).toThrow(/unknown capability/);
  });

  it('joins the pod namespaces and gives the PID namespace the config asks for', () => {
    const types = (pid: ContainerRequest['pidNamespace']) => buildOciSpec(request({ pidNamespace: pid }), image, pod, root, '/rootfs').linux.namespaces;
    expect(types('container')).toEqual([
      { type: 'mount' },
      { type: 'network', path: pod.netns },
      { type: 'ipc', path: pod.ipcns },
      { type: 'uts', path: pod.utsns },
      { type: 'pid' },
    ]);
    expect(types('pod')).toEqual([
      { type: 'mount' },
      { type: 'network', path: pod.netns },
      { type: 'ipc', path: pod.ipcns },
      { type: 'uts', path: pod.utsns },
      { type: 'pid', path: pod.pidns },
    ]);
    // The host's PID namespace: no pid entry at all.
    expect(types('node')).toEqual([
      { type: 'mount' },
      { type: 'network', path: pod.netns },
      { type: 'ipc', path: pod.ipcns },
      { type: 'uts', path: pod.utsns },
    ]);
  });

  it('mounts the pod files, shm and the defaults, letting a CRI mount replace a default', () => {
    const spec = buildOciSpec(
      request({ mounts: [{ containerPath: '/etc/hosts', hostPath: '/my/hosts', readonly: true, propagation: 'rslave' }] }),
      image,
      pod,
      root,
      '/rootfs',
    );
    const at = (d: string) => spec.mounts.filter((m) => m.destination === d);
    expect(at('/etc/hosts')).toEqual([{ destination: '/etc/hosts', type: 'bind', source: '/my/hosts', options: ['rbind', 'rslave', 'ro'] }]);
    expect(at('/dev/shm')[0].source).toBe(pod.shm);
    expect(at('/etc/resolv.conf')[0].source).toBe(pod.files.resolvConf);
    expect(at('/sys')[0].options).toContain('ro');
    expect(() => buildOciSpec(request({ mounts: [{ containerPath: 'rel', hostPath: '/x', readonly: false, propagation: 'private' }] }), image, pod, root, '/r')).toThrow(/not absolute/);
  });

  it('masks paths and applies seccomp unless privileged; keeps oom_score_adj at or above what the host allows', () => {
    const plain = buildOciSpec(request({ oomScoreAdj: -999 }), image, pod, root, '/rootfs');
    expect(plain.linux.maskedPaths).toEqual(DEFAULT_MASKED_PATHS);
    expect(plain.linux.seccomp).toMatchObject({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] });
    expect(plain.process.oomScoreAdj).toBe(-500);
    const priv = buildOciSpec(request({ privileged: true }), image, pod, root, '/rootfs');
    expect(priv.linux.maskedPaths).toBeUndefined();
    expect(priv.linux.seccomp).toBeUndefined();
    expect(priv.linux.resources).toMatchObject({ devices: [{ allow: true, access: 'rwm' }] });
    expect(buildOciSpec(request({ seccomp: { kind: 'unconfined' } }), image, pod, root, '/r').linux.seccomp).toBeUndefined();
  });

  it('carries resources, user, working dir, tty and a read-only rootfs', () => {
    const spec = buildOciSpec(
      request({ tty: true, readonlyRootfs: true, resources: { cpuShares: 512, cpuQuota: 50000, cpuPeriod: 100000, memoryLimit: 64 << 20, cpusetCpus: '0' } }),
      image,
      pod,
      { uid: 1000, gid: 1000, additionalGids: [50000], home: '/home/berth' },
      '/rootfs',
    );
    expect(spec.linux.resources).toMatchObject({ cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0' }, memory: { limit: 64 << 20 } });
    expect(spec.process).toMatchObject({ terminal: true, cwd: '/work', user: { uid: 1000, gid: 1000, additionalGids: [50000] } });
    expect(spec.root).toEqual({ path: '/rootfs', readonly: true });
    expect(spec.linux.cgroupsPath).toBe(pod.cgroupsPath);
  });
});

describe('capabilities on a host whose bounding set is short', () => {
  it('gives privileged and ALL only what the host has', async () => {
    const { capabilities } = await import('../../src/container/oci-spec');
    const host = ['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_ADMIN'];
    expect(capabilities({ privileged: true, capabilities: { add: [], drop: [] } }, host)).toEqual(host);
    expect(capabilities({ privileged: false, capabilities: { add: ['ALL'], drop: [] } }, host)).toEqual(host);
    expect(capabilities({ privileged: false, capabilities: { add: [], drop: [] } }, host)).toContain('CAP_NET_RAW');
  });
});
