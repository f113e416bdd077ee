// The CRI ContainerConfig → berth's container spec translation, and records → CRI messages.
import { describe, expect, it } from 'vitest';
import type { ContainerConfig__Output } from '../../src/generated/runtime/v1/ContainerConfig';
import { containerSpec, containerStatusMessage } from '../../src/server/handlers/container-message';
import type { ContainerRecord } from '../../src/container/container';
import { rfc3339ToNanos } from '../../src/container/container';
import type { PodSandboxConfig__Output } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { sandboxSpec } from '../../src/server/handlers/sandbox-message';
import { validateCgroupPath } from '../../src/cgroups/driver';
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError, UnimplementedError } from '../../src/errors';
import { hostLsms } from '../../src/util/host-lsm';

function config(extra: Partial<ContainerConfig__Output> = {}): ContainerConfig__Output {
  return {
    metadata: { name: 'web', attempt: 2 },
    image: { image: 'busybox', annotations: {}, user_specified_image: '', runtime_handler: '' },
    command: [], args: [], working_dir: '', envs: [], mounts: [], devices: [], labels: {}, annotations: {},
    log_path: 'web/2.log', stdin: false, stdin_once: false, tty: false, linux: null, windows: null, CDI_devices: [], stop_signal: 'RUNTIME_DEFAULT',
    ...extra,
  } as ContainerConfig__Output;
}

describe('containerSpec', () => {
  it('translates the basics, envs as bytes, and defaults', () => {
    const spec = containerSpec(config({ envs: [{ key: 'A', value: Buffer.from('1=2') }], command: ['sh'], args: ['-c', 'x'] }));
    expect(spec).toMatchObject({ name: 'web', attempt: 2, image: 'busybox', logPath: 'web/2.log', stopSignal: '' });
    expect(spec.process).toMatchObject({ command: ['sh'], args: ['-c', 'x'], env: [['A', '1=2']], pidNamespace: 'pod', seccomp: { kind: 'unconfined' } });
  });

  it('reads the security context: users, groups, seccomp forms, namespaces', () => {
    const linux = {
      resources: null,
      security_context: {
        run_as_user: { value: '1000' }, run_as_group: { value: '3000' }, supplemental_groups: ['5', '6'], run_as_username: '',
        seccomp: { profile_type: 'Localhost', localhost_ref: '/etc/profiles/p.json' }, namespace_options: { pid: 'TARGET', target_id: 'abc' },
      },
    } as unknown as ContainerConfig__Output['linux'];
    const spec = containerSpec(config({ linux }));
    expect(spec.user).toEqual({ runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [5, 6], runAsUsername: undefined, supplementalGroupsPolicy: 'merge' });
    const strict = { ...linux, security_context: { ...linux!.security_context!, supplemental_groups_policy: 'Strict' } } as unknown as ContainerConfig__Output['linux'];
    expect(containerSpec(config({ linux: strict })).user.supplementalGroupsPolicy).toBe('strict');
    expect(spec.seccompProfilePath).toBe('/etc/profiles/p.json');
    expect(spec.process.pidNamespace).toBe('target');
    expect(spec.pidTarget).toBe('abc');
  });

  it('accepts the legacy seccomp_profile_path forms and refuses a name without localhost/', () => {
    const withPath = (p: string) => containerSpec(config({ linux: { resources: null, security_context: { seccomp_profile_path: p } } as unknown as ContainerConfig__Output['linux'] }));
    expect(withPath('runtime/default').process.seccomp).toEqual({ kind: 'runtime-default' });
    expect(withPath('localhost//x.json').seccompProfilePath).toBe('/x.json');
    expect(() => withPath('my-profile')).toThrow(/localhost/);
  });

  it('refuses a config without name or image', () => {
    expect(() => containerSpec(config({ metadata: { name: '', attempt: 0 } }))).toThrow(/metadata.name/);
    expect(() => containerSpec(config({ image: null }))).toThrow(/image/);
    expect(() => containerSpec(null)).toThrow(/config is missing/);
  });
});

describe('path rules of CreateContainer and RunPodSandbox', () => {
  const mount = (container_path: string, host_path = '/data') => ({ container_path, host_path, readonly: false, selinux_relabel: false, propagation: 'PROPAGATION_PRIVATE' as const, uidMappings: [], gidMappings: [], recursive_read_only: false, image: null, image_sub_path: '' });
  const refused: [string, Partial<ContainerConfig__Output>, RegExp][] = [
    ['log_path climbing out', { log_path: '../../etc/cron.d/x' }, /log_path .* clean relative path/],
    ['log_path climbing out midway', { log_path: 'web/../../x.log' }, /log_path/],
    ['log_path absolute', { log_path: '/etc/passwd' }, /log_path .* must be relative/],
    ['log_path with "."', { log_path: './web/0.log' }, /log_path/],
    ['log_path with an empty segment', { log_path: 'web//0.log' }, /log_path/],
    ['log_path with NUL', { log_path: 'web/0.log\0x' }, /log_path .* NUL/],
    ['mount destination relative', { mounts: [mount('data')] }, /mounts\[0\]\.container_path .* absolute/],
    ['mount destination with ..', { mounts: [mount('/data/../../etc')] }, /mounts\[0\]\.container_path .* clean/],
    ['mount over /proc', { mounts: [mount('/proc')] }, /over \/proc is refused/],
    ['mount below /proc', { mounts: [mount('/proc/sys/kernel/core_pattern')] }, /over \/proc is refused/],
    ['mount over /sys', { mounts: [mount('/sys/')] }, /over \/sys is refused/],
    ['mount source relative', { mounts: [mount('/data', 'data')] }, /mounts\[0\]\.host_path .* absolute/],
    ['mount source with ..', { mounts: [mount('/data', '/var/lib/../../etc')] }, /mounts\[0\]\.host_path/],
    ['second mount bad', { mounts: [mount('/a'), mount('b')] }, /mounts\[1\]/],
    ['device path relative', { devices: [{ container_path: 'dev/x', host_path: '/dev/null', permissions: 'rwm' }] }, /devices\[0\]\.container_path/],
    ['device source with ..', { devices: [{ container_path: '/dev/x', host_path: '/dev/../etc/shadow', permissions: 'rwm' }] }, /devices\[0\]\.host_path/],
  ];
  it.each(refused)('refuses %s with INVALID_ARGUMENT naming the field', (_name, extra, message) => {
    expect(() => containerSpec(config(extra))).toThrow(InvalidArgumentError);
    expect(() => containerSpec(config(extra))).toThrow(message);
  });

  it('accepts what the kubelet sends', () => {
    const spec = containerSpec(config({ log_path: 'web/2.log', mounts: [mount('/var/run/secrets/x/'), mount('/proc/cpuinfo', '/var/lib/lxcfs/proc/cpuinfo'), mount('/sys/fs/bpf', '/sys/fs/bpf')] }));
    expect(spec.logPath).toBe('web/2.log');
    expect(spec.process.mounts.map((m) => m.containerPath)).toEqual(['/var/run/secrets/x/', '/proc/cpuinfo', '/sys/fs/bpf']);
    expect(containerSpec(config({ log_path: '' })).logPath).toBe('');
  });

  it('refuses a pod log directory that is relative or not clean, and a cgroup parent that is not clean', () => {
    const pod = (extra: object) => sandboxSpec({ metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 0 }, hostname: '', log_directory: '/var/log/pods/n_p_u', dns_config: null, port_mappings: [], labels: {}, annotations: {}, linux: null, windows: null, ...extra } as unknown as PodSandboxConfig__Output, '');
    expect(pod({}).logDirectory).toBe('/var/log/pods/n_p_u');
    expect(() => pod({ log_directory: 'var/log/pods' })).toThrow(/log_directory .* absolute/);
    expect(() => pod({ log_directory: '/var/log/pods/../../../etc' })).toThrow(/log_directory .* clean/);
    expect(() => validateCgroupPath('/kubepods/../x')).toThrow(/cgroup_parent .* clean/);
    expect(() => validateCgroupPath('/kubepods/./x')).toThrow(/cgroup_parent/);
    expect(validateCgroupPath('/kubepods/burstable/podx/')).toBe('/kubepods/burstable/podx');
  });
});

describe('name, size and number rules of CreateContainer and RunPodSandbox', () => {
  const sc = (extra: object) => ({ linux: { resources: null, security_context: { namespace_options: null, ...extra } } }) as unknown as Partial<ContainerConfig__Output>;
  const res = (extra: object) => ({ linux: { security_context: null, resources: { cpu_period: '0', cpu_quota: '0', cpu_shares: '0', memory_limit_in_bytes: '0', memory_swap_limit_in_bytes: '0', oom_score_adj: '0', cpuset_cpus: '', cpuset_mems: '', hugepage_limits: [], unified: {}, ...extra } } }) as unknown as Partial<ContainerConfig__Output>;
  const big = 'x'.repeat(200 * 1024);
  const container: [string, Partial<ContainerConfig__Output>, RegExp, typeof InvalidArgumentError | typeof ResourceExhaustedError][] = [
    ['a name of 254 bytes', { metadata: { name: 'n'.repeat(254), attempt: 0 } }, /metadata\.name is 254 bytes/, InvalidArgumentError],
    ['a name with a control character', { metadata: { name: 'a\u0001b', attempt: 0 } }, /control character/, InvalidArgumentError],
    ['a name ".."', { metadata: { name: '..', attempt: 0 } }, /must not be/, InvalidArgumentError],
    ['an empty label key', { labels: { '': 'x' } }, /a key is empty/, InvalidArgumentError],
    ['a NUL in an annotation', { annotations: { a: 'x\0y' } }, /NUL/, InvalidArgumentError],
    ['labels and annotations over 256 KiB', { labels: { a: big }, annotations: { b: big } }, /at most 262144/, ResourceExhaustedError],
    ['an env name with "="', { envs: [{ key: 'A=B', value: Buffer.from('1') }] }, /envs/, InvalidArgumentError],
    ['an empty env name', { envs: [{ key: '', value: Buffer.from('1') }] }, /envs/, InvalidArgumentError],
    ['a NUL in an arg', { args: ['a\0b'] }, /NUL/, InvalidArgumentError],
    ['command and env over 1 MiB', { command: ['sh'], envs: Array.from({ length: 6 }, (_v, i) => ({ key: `V${i}`, value: Buffer.from(big) })) }, /at most 1048576/, ResourceExhaustedError],
    ['a negative memory limit', res({ memory_limit_in_bytes: '-5' }), /memory_limit_in_bytes is -5/, InvalidArgumentError],
    ['negative cpu shares', res({ cpu_shares: '-1' }), /cpu_shares/, InvalidArgumentError],
    ['a cpu quota below -1', res({ cpu_quota: '-2' }), /cpu_quota is -2/, InvalidArgumentError],
    ['a negative cpu period', res({ cpu_period: '-100000' }), /cpu_period/, InvalidArgumentError],
    ['a swap limit below -1', res({ memory_swap_limit_in_bytes: '-2' }), /memory_swap_limit_in_bytes/, InvalidArgumentError],
    ['a memory limit that is not a number', res({ memory_limit_in_bytes: '12abc' }), /not an integer/, InvalidArgumentError],
    ['oom_score_adj over 1000', res({ oom_score_adj: '1001' }), /oom_score_adj is 1001/, InvalidArgumentError],
    ['oom_score_adj under -1000', res({ oom_score_adj: '-1001' }), /oom_score_adj/, InvalidArgumentError],
    ['run_as_user 2^32-1', sc({ run_as_user: { value: String(2 ** 32 - 1) } }), /run_as_user is 4294967295/, InvalidArgumentError],
    ['a negative run_as_group', sc({ run_as_group: { value: '-1' } }), /run_as_group/, InvalidArgumentError],
    ['a supplemental group beyond the range', sc({ supplemental_groups: ['5', String(2 ** 40)] }), /supplemental_groups\[1\]/, InvalidArgumentError],
  ];
  it.each(container)('CreateContainer refuses %s', (_name, extra, message, code) => {
    expect(() => containerSpec(config(extra))).toThrow(code);
    expect(() => containerSpec(config(extra))).toThrow(message);
  });

  it('CreateContainer accepts the limits the kubelet uses: unlimited swap and quota (-1), uid 2^32-2, 256 KiB of metadata', () => {
    const spec = containerSpec(config({ ...res({ memory_swap_limit_in_bytes: '-1', cpu_quota: '-1', oom_score_adj: '-997', memory_limit_in_bytes: '9223372036854775807' }), labels: { a: 'x'.repeat(100 * 1024) } }));
    expect(spec.process.resources).toMatchObject({ memorySwapLimit: -1, cpuQuota: -1 });
    expect(spec.process.oomScoreAdj).toBe(-997);
    expect(containerSpec(config(sc({ run_as_user: { value: String(2 ** 32 - 2) } }))).user.runAsUser).toBe(2 ** 32 - 2);
  });

  const podBase = { metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 0 }, hostname: 'p', log_directory: '', dns_config: null, port_mappings: [], labels: {}, annotations: {}, linux: null, windows: null };
  const pod = (extra: object) => sandboxSpec({ ...podBase, ...extra } as unknown as PodSandboxConfig__Output, '');
  const port = (extra: object) => ({ port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 8080, host_ip: '', ...extra }] });
  const podCases: [string, object, RegExp, typeof InvalidArgumentError | typeof ResourceExhaustedError][] = [
    ['an empty namespace', { metadata: { ...podBase.metadata, namespace: '' } }, /metadata\.namespace is empty/, InvalidArgumentError],
    ['an empty uid', { metadata: { ...podBase.metadata, uid: '' } }, /metadata\.uid is empty/, InvalidArgumentError],
    ['a name with "/"', { metadata: { ...podBase.metadata, name: 'a/b' } }, /metadata\.name/, InvalidArgumentError],
    ['a namespace "."', { metadata: { ...podBase.metadata, namespace: '.' } }, /must not be/, InvalidArgumentError],
    ['a hostname of 65 bytes', { hostname: 'h'.repeat(65) }, /hostname is 65 bytes/, InvalidArgumentError],
    ['a hostname with a space', { hostname: 'a b' }, /hostname/, InvalidArgumentError],
    ['container port 0', port({ container_port: 0 }), /container_port is 0/, InvalidArgumentError],
    ['container port 65536', port({ container_port: 65536 }), /container_port is 65536/, InvalidArgumentError],
    ['a negative host port', port({ host_port: -1 }), /host_port is -1/, InvalidArgumentError],
    ['host port 70000', port({ host_port: 70000 }), /host_port is 70000/, InvalidArgumentError],
    ['a protocol outside the enum', port({ protocol: 7 }), /protocol 7 is not TCP, UDP or SCTP/, InvalidArgumentError],
    ['pod annotations over 256 KiB', { annotations: { a: big, b: big } }, /at most 262144/, ResourceExhaustedError],
  ];
  it.each(podCases)('RunPodSandbox refuses %s', (_name, extra, message, code) => {
    expect(() => pod(extra)).toThrow(code);
    expect(() => pod(extra)).toThrow(message);
  });

  it('RunPodSandbox accepts an unset host port (0), SCTP, and an empty hostname', () => {
    expect(pod({ ...port({ host_port: 0, protocol: 'SCTP' }), hostname: '' }).portMappings).toEqual([]);
    expect(pod(port({ protocol: 'UDP' })).portMappings).toEqual([{ hostPort: 8080, containerPort: 80, protocol: 'udp' }]);
  });
});

describe('confinement that berth cannot apply', () => {
  const sc = (extra: object) => ({ linux: { resources: null, security_context: { namespace_options: null, ...extra } } }) as unknown as Partial<ContainerConfig__Output>;
  // Where the module is enabled berth still refuses (it applies neither yet), with another code.
  const apparmorError = hostLsms().apparmor ? UnimplementedError : FailedPreconditionError;
  const selinuxError = hostLsms().selinux ? UnimplementedError : FailedPreconditionError;

  it('refuses a named AppArmor profile, in either field, and an SELinux label, naming them', () => {
    expect(() => containerSpec(config(sc({ apparmor: { profile_type: 'Localhost', localhost_ref: 'k8s-nginx' } })))).toThrow(apparmorError);
    expect(() => containerSpec(config(sc({ apparmor: { profile_type: 'Localhost', localhost_ref: 'k8s-nginx' } })))).toThrow(/AppArmor profile "k8s-nginx"/);
    expect(() => containerSpec(config(sc({ apparmor_profile: 'localhost/k8s-nginx' })))).toThrow(apparmorError);
    expect(() => containerSpec(config(sc({ selinux_options: { user: '', role: '', type: 'spc_t', level: '' } })))).toThrow(selinuxError);
    expect(() => containerSpec(config(sc({ selinux_options: { user: '', role: '', type: 'spc_t', level: '' } })))).toThrow(/SELinux label "::spc_t:"/);
    expect(() => containerSpec(config(sc({ apparmor_profile: 'my-profile' })))).toThrow(InvalidArgumentError);
    const pod = { metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 0 }, hostname: '', log_directory: '', dns_config: null, port_mappings: [], labels: {}, annotations: {}, windows: null };
    expect(() => sandboxSpec({ ...pod, linux: { security_context: { apparmor: { profile_type: 'Localhost', localhost_ref: 'x' } } } } as unknown as PodSandboxConfig__Output, '')).toThrow(apparmorError);
  });

  it('keeps RuntimeDefault, Unconfined and an empty SELinux label working', () => {
    for (const extra of [{ apparmor: { profile_type: 'RuntimeDefault', localhost_ref: '' } }, { apparmor: { profile_type: 'Unconfined', localhost_ref: '' } }, { apparmor_profile: 'runtime/default' }, { apparmor_profile: 'unconfined' }, { selinux_options: { user: '', role: '', type: '', level: '' } }]) {
      expect(containerSpec(config(sc(extra))).name).toBe('web');
    }
  });
});

describe('container messages', () => {
  it('reports an exited container with times, reason and resources', () => {
    const spec = containerSpec(config({ linux: { resources: { memory_limit_in_bytes: '1048576', cpu_shares: '2', oom_score_adj: '5' }, security_context: null } as unknown as ContainerConfig__Output['linux'] }));
    const record: ContainerRecord = {
      id: 'a'.repeat(64), fullName: 'k8s_web_p_ns_uid_2', podId: 'b'.repeat(64), spec, requestKey: '', handler: 'runc',
      image: { id: 'sha256:1', name: 'docker.io/library/busybox:latest', ref: 'docker.io/library/busybox@sha256:2', layers: [], stopSignal: '' },
      state: 'exited', createdAt: '1', startedAt: '2', exit: { exitCode: 1, reason: 'Error', message: '', finishedAt: '3' },
      logPath: '/logs/web/2.log', cgroup: '/x', stateDir: '/s', containerDir: '/c',
    };
    const msg = containerStatusMessage(record);
    expect(msg).toMatchObject({ state: 'CONTAINER_EXITED', created_at: '1', started_at: '2', finished_at: '3', exit_code: 1, reason: 'Error', image_id: 'sha256:1' });
    expect(msg.resources?.linux).toMatchObject({ memory_limit_in_bytes: '1048576', cpu_shares: '2', oom_score_adj: '5' });
  });

  it('converts RFC 3339 nanosecond times exactly', () => {
    expect(rfc3339ToNanos('2026-11-25T06:03:31.123456789Z')).toBe('1795586611123456789');
    expect(rfc3339ToNanos('1970-01-01T00:00:01Z')).toBe('1000000000');
  });
});
