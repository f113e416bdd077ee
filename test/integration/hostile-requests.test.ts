// Issue 14's proof: hostile requests on every surface of a real berthd (pods, containers, container
// operations, streaming, images and the registries they come from, gRPC framing). Each one must be
// refused with its exact code, and must leave nothing behind: berthd's root and state, the test's own
// directory (where the pods' logs go) and the mount table are the same after it as before, and paths a
// request tried to reach do not exist.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { loadCri } from '../../src/proto/load';
import { prefixed, rawGrpc } from '../support/grpc-raw';
import { buildImage, layer, layerFromTar, sha256, type Blob, type BuiltImage } from '../support/oci/image';
import { tar } from '../support/oci/tar';
import { startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';

const tag = `${process.pid % 10000}`;
const { INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, UNIMPLEMENTED, INTERNAL } = grpc.status;

interface Case {
  name: string;
  call: () => Promise<unknown>;
  code: grpc.status;
  /** What the message must say (the field, or the rule). */
  says?: RegExp;
  /** Paths the request aimed at, which must not exist afterwards. */
  absent?: () => string[];
}

let env: PodDaemon;
let pod: { id: string; config: PodSandboxConfig };
let running: string;
let created: string;
let profiles: string;

const rt = () => env.berthd.client.runtime;
const img = () => env.berthd.client.image;

/** Every path under the dirs (with each file's size), and the mounts below them. */
function snapshot(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      out.push(e.isFile() ? `${p} ${fs.statSync(p).size}` : p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(env.berthd.dir);
  walk(env.dir);
  const roots = [env.berthd.dir, env.dir];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const target = line.split(' ')[4];
    if (target && roots.some((r) => target.startsWith(r))) out.push(`mount ${target}`);
  }
  return out.sort();
}

function podConfig(name: string, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  return {
    metadata: { name, namespace: 'hostile', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: path.join(env.dir, 'logs', name),
    ...extra,
  };
}

function ctrConfig(name: string, extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return { metadata: { name, attempt: 0 }, image: { image: env.image }, command: ['sleep', '3600'], log_path: `${name}.log`, ...extra };
}

const runPod = (config: PodSandboxConfig, runtime_handler = '') => rt().RunPodSandbox({ config, runtime_handler });
const createIn = (config: ContainerConfig, podId = pod.id) => rt().CreateContainer({ pod_sandbox_id: podId, config, sandbox_config: pod.config });
const withSecurity = (security_context: NonNullable<NonNullable<ContainerConfig['linux']>['security_context']>) => ({ linux: { security_context } });
const big = (n: number) => 'x'.repeat(n);

/** Runs the case and checks its code, its message, and that nothing was written. */
async function check(c: Case): Promise<void> {
  const before = snapshot();
  const err = await c.call().then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  expect(err, `${c.name}: accepted`).toBeDefined();
  expect({ code: err?.code, details: err?.details }).toMatchObject({ code: c.code, ...(c.says ? { details: expect.stringMatching(c.says) } : {}) });
  expect(snapshot()).toEqual(before);
  for (const p of c.absent?.() ?? []) expect(fs.existsSync(p), p).toBe(false);
}

// ---- pods: RunPodSandbox ----

const podCases = (): Case[] => {
  const meta = (name: string, field: 'name' | 'namespace' | 'uid', value: string): Case => ({
    name,
    call: () => runPod(podConfig(`meta-${field}`, { metadata: { name: 'ok', namespace: 'hostile', uid: 'u-ok', attempt: 0, [field]: value } })),
    code: INVALID_ARGUMENT,
    says: new RegExp(field),
  });
  const security = (name: string, security_context: object, code: grpc.status, says?: RegExp): Case => ({
    name,
    call: () => runPod(podConfig('sec', { linux: { security_context } })),
    code,
    says,
  });
  return [
    meta('empty name', 'name', ''),
    meta('name with a slash', 'name', 'a/b'),
    meta('name ..', 'name', '..'),
    meta('name .', 'name', '.'),
    meta('name of 254 bytes', 'name', big(254)),
    meta('name with NUL', 'name', 'a\0b'),
    meta('name with a newline', 'name', 'a\nb'),
    meta('empty namespace', 'namespace', ''),
    meta('namespace with a slash', 'namespace', 'ns/evil'),
    meta('namespace ..', 'namespace', '..'),
    meta('namespace with a tab', 'namespace', 'a\tb'),
    meta('empty uid', 'uid', ''),
    meta('uid climbing out', 'uid', 'u/../../x'),
    meta('uid of 300 bytes', 'uid', big(300)),
    { name: 'no metadata', call: () => runPod({ ...podConfig('x'), metadata: undefined }), code: INVALID_ARGUMENT, says: /metadata/ },
    { name: 'no config', call: () => rt().RunPodSandbox({ runtime_handler: '' }), code: INVALID_ARGUMENT, says: /config/ },
    { name: 'hostname of 65 bytes', call: () => runPod(podConfig('h1', { hostname: big(65) })), code: INVALID_ARGUMENT, says: /hostname/ },
    { name: 'hostname with a space', call: () => runPod(podConfig('h2', { hostname: 'a b' })), code: INVALID_ARGUMENT, says: /hostname/ },
    { name: 'hostname with a slash', call: () => runPod(podConfig('h3', { hostname: 'a/b' })), code: INVALID_ARGUMENT, says: /hostname/ },
    {
      name: 'relative log_directory',
      call: () => runPod(podConfig('l1', { log_directory: `berth-hostile-${tag}/logs` })),
      code: INVALID_ARGUMENT,
      says: /log_directory/,
      absent: () => [path.resolve(`berth-hostile-${tag}`)],
    },
    {
      name: 'log_directory climbing out',
      call: () => runPod(podConfig('l2', { log_directory: `${env.dir}/logs/../../escape-${tag}` })),
      code: INVALID_ARGUMENT,
      says: /log_directory/,
      absent: () => [path.join(path.dirname(env.dir), `escape-${tag}`)],
    },
    { name: 'log_directory with //', call: () => runPod(podConfig('l3', { log_directory: `${env.dir}//logs` })), code: INVALID_ARGUMENT, says: /log_directory/ },
    { name: 'log_directory with /./', call: () => runPod(podConfig('l4', { log_directory: `${env.dir}/./logs` })), code: INVALID_ARGUMENT, says: /log_directory/ },
    { name: 'log_directory with NUL', call: () => runPod(podConfig('l5', { log_directory: `${env.dir}/lo\0gs` })), code: INVALID_ARGUMENT, says: /log_directory/ },
    { name: 'labels over 256 KiB', call: () => runPod(podConfig('b1', { labels: { a: big(200 * 1024), b: big(100 * 1024) } })), code: RESOURCE_EXHAUSTED, says: /labels and annotations .* at most 262144/ },
    { name: 'annotations over 256 KiB', call: () => runPod(podConfig('b2', { annotations: { a: big(257 * 1024) } })), code: RESOURCE_EXHAUSTED, says: /labels and annotations .* at most 262144/ },
    { name: 'labels and annotations over 256 KiB together', call: () => runPod(podConfig('b3', { labels: { a: big(130 * 1024) }, annotations: { b: big(130 * 1024) } })), code: RESOURCE_EXHAUSTED },
    { name: 'an empty label key', call: () => runPod(podConfig('b4', { labels: { '': 'x' } })), code: INVALID_ARGUMENT, says: /label/ },
    { name: 'a label value with NUL', call: () => runPod(podConfig('b5', { labels: { k: 'a\0b' } })), code: INVALID_ARGUMENT, says: /label/ },
    { name: 'an annotation key with NUL', call: () => runPod(podConfig('b6', { annotations: { 'k\0': 'v' } })), code: INVALID_ARGUMENT, says: /annotation/ },
    ...(
      [
        ['container_port 0', { container_port: 0 }],
        ['container_port 65536', { container_port: 65536 }],
        ['container_port -1', { container_port: -1 }],
        ['host_port -1', { container_port: 80, host_port: -1 }],
        ['host_port 70000', { container_port: 80, host_port: 70000 }],
        ['an unknown protocol', { container_port: 80, host_port: 8080, protocol: 7 }],
        ['a host_ip that is no address', { container_port: 80, host_port: 8080, host_ip: '10.0.0.1; rm -rf /' }],
      ] as const
    ).map(([name, mapping]): Case => ({
      name: `port mapping: ${name}`,
      call: () => runPod(podConfig('p', { port_mappings: [mapping as never] })),
      code: INVALID_ARGUMENT,
      says: /port|protocol|host_ip/,
    })),
    ...['../escape', '/kubepods/../../x', 'relative/parent', '/a\nb', '/a//b'].map(
      (parent): Case => ({
        name: `cgroup_parent ${JSON.stringify(parent)}`,
        call: () => runPod(podConfig('cg', { linux: { cgroup_parent: parent } })),
        code: INVALID_ARGUMENT,
        says: /cgroup_parent/,
      }),
    ),
    security('SELinux options on a host without SELinux', { selinux_options: { type: 'evil_t' } }, FAILED_PRECONDITION, /SELinux/),
    security('a Localhost seccomp profile with a relative path', { seccomp: { profile_type: 'Localhost', localhost_ref: 'profiles/x.json' } }, INVALID_ARGUMENT, /seccomp/),
    security('a seccomp_profile_path of no known form', { seccomp_profile_path: 'my-profile' }, INVALID_ARGUMENT, /seccomp/),
    {
      name: 'a sysctl that is not namespaced',
      call: () => runPod(podConfig('s1', { linux: { sysctls: { 'kernel.panic': '1' } } })),
      code: INVALID_ARGUMENT,
      says: /kernel\.panic/,
    },
    {
      name: 'a sysctl name climbing out of /proc/sys',
      call: () => runPod(podConfig('s2', { linux: { sysctls: { 'net/../../../../etc/x': '1' } } })),
      code: INVALID_ARGUMENT,
      says: /sysctl/,
    },
    {
      name: 'a sysctl value with a newline',
      call: () => runPod(podConfig('s3', { linux: { sysctls: { 'net.ipv4.ip_forward': '1\n0' } } })),
      code: INVALID_ARGUMENT,
      says: /sysctl/,
    },
    {
      name: 'a DNS server smuggling a resolv.conf line',
      call: () => runPod(podConfig('d1', { dns_config: { servers: ['10.0.0.1\nnameserver 6.6.6.6'], searches: [], options: [] } })),
      code: INVALID_ARGUMENT,
      says: /DNS|dns/,
    },
    {
      name: 'a DNS search domain with a newline',
      call: () => runPod(podConfig('d2', { dns_config: { servers: [], searches: ['a\noptions ndots:99'], options: [] } })),
      code: INVALID_ARGUMENT,
      says: /DNS|dns/,
    },
    {
      name: 'seven DNS search domains of 50 bytes',
      call: () => runPod(podConfig('d3', { dns_config: { servers: [], searches: Array.from({ length: 40 }, () => big(50)), options: [] } })),
      code: INVALID_ARGUMENT,
      says: /DNS search/,
    },
    { name: '1025 port mappings', call: () => runPod(podConfig('pm', { port_mappings: Array.from({ length: 1025 }, (_, i) => ({ container_port: 80, host_port: 10000 + i, protocol: 'TCP' as const })) })), code: RESOURCE_EXHAUSTED, says: /port_mappings has 1025/ },
    { name: '1025 sysctls', call: () => runPod(podConfig('sc', { linux: { sysctls: Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`net.ipv4.conf.x${i}.forwarding`, '1'])) } })), code: RESOURCE_EXHAUSTED, says: /sysctls has 1025/ },
    { name: 'a log_directory longer than PATH_MAX', call: () => runPod(podConfig('lp', { log_directory: `/${big(5000)}` })), code: INVALID_ARGUMENT, says: /4096/ },
    { name: 'an unknown runtime handler', call: () => runPod(podConfig('rh'), 'no-such-handler'), code: INVALID_ARGUMENT, says: /runtime handler/ },
  ];
};

// ---- containers: CreateContainer ----

const containerCases = (): Case[] => {
  // The configs are made when the case runs: the daemon (and its image) exist only then.
  const ctr = (name: string, config: () => ContainerConfig, code: grpc.status, says?: RegExp, absent?: () => string[]): Case => ({ name, call: () => createIn(config()), code, says, absent });
  const meta = (label: string, value: string) => ctr(`container name ${label}`, () => ({ ...ctrConfig('m'), metadata: { name: value, attempt: 0 } }), INVALID_ARGUMENT, /name/);
  const logPath = (label: string, value: string, absent?: () => string[]) => ctr(`log_path ${label}`, () => ctrConfig('lp', { log_path: value }), INVALID_ARGUMENT, /log_path/, absent);
  const mount = (label: string, m: { container_path: string; host_path: string }) =>
    ctr(`mount: ${label}`, () => ctrConfig('mnt', { mounts: [{ readonly: true, ...m }] }), INVALID_ARGUMENT, /path|\/proc|\/sys/);
  const device = (label: string, d: { container_path: string; host_path: string }) =>
    ctr(`device: ${label}`, () => ctrConfig('dev', { devices: [{ permissions: 'rwm', ...d }] }), INVALID_ARGUMENT, /path/);
  const resources = (label: string, r: object) =>
    ctr(`resources: ${label}`, () => ctrConfig('res', { linux: { resources: r } }), INVALID_ARGUMENT, /cpu|memory|oom/);
  const sec = (label: string, s: object, code: grpc.status, says?: RegExp) => ctr(`security: ${label}`, () => ctrConfig('sec', withSecurity(s)), code, says);
  return [
    meta('empty', ''),
    meta('with a slash', 'a/b'),
    meta('..', '..'),
    meta('with an underscore', 'a_b'),
    meta('with a space', 'a b'),
    meta('of 254 bytes', big(254)),
    meta('with NUL', 'a\0b'),
    { name: 'no metadata', call: () => createIn({ ...ctrConfig('x'), metadata: undefined }), code: INVALID_ARGUMENT, says: /metadata/ },
    { name: 'no config', call: () => rt().CreateContainer({ pod_sandbox_id: pod.id, sandbox_config: pod.config }), code: INVALID_ARGUMENT, says: /config/ },
    ctr('no image', () => ctrConfig('i1', { image: { image: '' } }), INVALID_ARGUMENT, /image/),
    ctr('an image not stored', () => ctrConfig('i2', { image: { image: 'nothere:1' } }), NOT_FOUND, /nothere/),
    ctr('an image reference with NUL', () => ctrConfig('i3', { image: { image: 'busy\0box' } }), INVALID_ARGUMENT),
    logPath('absolute', `/tmp/berth-hostile-${tag}.log`, () => [`/tmp/berth-hostile-${tag}.log`]),
    logPath('climbing out', `../../escape-${tag}.log`, () => [path.join(env.dir, `escape-${tag}.log`)]),
    logPath('climbing out inside', `a/../../../escape2-${tag}.log`, () => [path.join(env.dir, `escape2-${tag}.log`)]),
    logPath('with //', 'a//b.log'),
    logPath('with ./', './x.log'),
    logPath('with NUL', 'x\0.log'),
    mount('relative container_path', { container_path: 'data', host_path: '/tmp' }),
    mount('container_path climbing', { container_path: '/data/../../etc', host_path: '/tmp' }),
    mount('over /proc', { container_path: '/proc', host_path: '/tmp' }),
    mount('over /proc/sys', { container_path: '/proc/sys', host_path: '/tmp' }),
    mount('over /proc/self/mem', { container_path: '/proc/self/mem', host_path: '/tmp' }),
    mount('over /sys', { container_path: '/sys', host_path: '/tmp' }),
    mount('an empty container_path', { container_path: '', host_path: '/tmp' }),
    mount('relative host_path', { container_path: '/data', host_path: 'tmp' }),
    mount('host_path climbing', { container_path: '/data', host_path: '/tmp/../etc' }),
    mount('host_path with NUL', { container_path: '/data', host_path: '/tm\0p' }),
    device('relative container_path', { container_path: 'dev/null2', host_path: '/dev/null' }),
    device('relative host_path', { container_path: '/dev/null2', host_path: 'dev/null' }),
    device('host_path climbing', { container_path: '/dev/x', host_path: '/dev/../etc/passwd' }),
    ctr('an env name that is empty', () => ctrConfig('e1', { envs: [{ key: '', value: Buffer.from('x') }] }), INVALID_ARGUMENT, /env/),
    ctr('an env name with =', () => ctrConfig('e2', { envs: [{ key: 'A=B', value: Buffer.from('x') }] }), INVALID_ARGUMENT, /env/),
    ctr('an env name with NUL', () => ctrConfig('e3', { envs: [{ key: 'A\0', value: Buffer.from('x') }] }), INVALID_ARGUMENT, /env/),
    ctr('an env value with NUL', () => ctrConfig('e4', { envs: [{ key: 'A', value: Buffer.from('x\0y') }] }), INVALID_ARGUMENT, /env/),
    ctr('envs over 1 MiB', () => ctrConfig('e5', { envs: Array.from({ length: 20 }, (_, i) => ({ key: `K${i}`, value: Buffer.from(big(60 * 1024)) })) }), RESOURCE_EXHAUSTED, /at most 1048576/),
    ctr('a command with NUL', () => ctrConfig('c1', { command: ['sh\0'] }), INVALID_ARGUMENT, /command/),
    ctr('an argument with NUL', () => ctrConfig('c2', { args: ['a\0b'] }), INVALID_ARGUMENT, /args/),
    ctr('arguments over 1 MiB', () => ctrConfig('c3', { args: [big(600 * 1024), big(600 * 1024)] }), RESOURCE_EXHAUSTED, /at most 1048576/),
    resources('cpu_shares -1', { cpu_shares: -1 }),
    resources('cpu_period -5', { cpu_period: -5 }),
    resources('cpu_quota -2', { cpu_quota: -2 }),
    resources('memory_limit_in_bytes -1', { memory_limit_in_bytes: -1 }),
    resources('memory_swap_limit_in_bytes -2', { memory_swap_limit_in_bytes: -2 }),
    resources('oom_score_adj 1001', { oom_score_adj: 1001 }),
    resources('oom_score_adj -1001', { oom_score_adj: -1001 }),
    sec('run_as_user 2^32-1', { run_as_user: { value: '4294967295' } }, INVALID_ARGUMENT, /run_as_user/),
    sec('run_as_group 2^32-1', { run_as_user: { value: '0' }, run_as_group: { value: '4294967295' } }, INVALID_ARGUMENT, /run_as_group/),
    sec('a supplemental group 2^32-1', { supplemental_groups: ['4294967295'] }, INVALID_ARGUMENT, /supplemental_groups/),
    sec('run_as_group without a user', { run_as_group: { value: '5' } }, INVALID_ARGUMENT, /run_as_group/),
    sec('a Localhost AppArmor profile on a host without AppArmor', { apparmor: { profile_type: 'Localhost', localhost_ref: 'my-profile' } }, FAILED_PRECONDITION, /AppArmor/),
    sec('the deprecated apparmor_profile naming a local profile', { apparmor_profile: 'localhost/my-profile' }, FAILED_PRECONDITION, /AppArmor/),
    sec('an apparmor_profile of no known form', { apparmor_profile: 'evil' }, INVALID_ARGUMENT, /apparmor/),
    sec('SELinux options', { selinux_options: { level: 's0:c1,c2' } }, FAILED_PRECONDITION, /SELinux/),
    sec('a Localhost seccomp profile with a relative path', { seccomp: { profile_type: 'Localhost', localhost_ref: 'x.json' } }, INVALID_ARGUMENT, /seccomp/),
    sec('a Localhost seccomp profile that does not exist', { seccomp: { profile_type: 'Localhost', localhost_ref: `/nonexistent-${tag}.json` } }, INVALID_ARGUMENT, /seccomp/),
    {
      name: 'security: a Localhost seccomp profile that is not JSON',
      call: () => createIn(ctrConfig('sp1', withSecurity({ seccomp: { profile_type: 'Localhost', localhost_ref: path.join(profiles, 'garbage.json') } }))),
      code: INVALID_ARGUMENT,
      says: /seccomp/,
    },
    {
      name: 'security: a Localhost seccomp profile with an unknown action',
      call: () => createIn(ctrConfig('sp2', withSecurity({ seccomp: { profile_type: 'Localhost', localhost_ref: path.join(profiles, 'bad-action.json') } }))),
      code: INVALID_ARGUMENT,
      says: /defaultAction/,
    },
    {
      name: 'security: a Localhost seccomp profile with a rule naming no syscall',
      call: () => createIn(ctrConfig('sp3', withSecurity({ seccomp: { profile_type: 'Localhost', localhost_ref: path.join(profiles, 'no-names.json') } }))),
      code: INVALID_ARGUMENT,
      says: /syscalls/,
    },
    sec('the deprecated seccomp_profile_path of no known form', { seccomp_profile_path: 'unconfined-please' }, INVALID_ARGUMENT, /seccomp/),
    ctr('an unknown capability', () => ctrConfig('cap', withSecurity({ capabilities: { add_capabilities: ['CAP_BOGUS'], drop_capabilities: [], add_ambient_capabilities: [] } })), INVALID_ARGUMENT, /capability/),
    ctr('a masked path that is relative', () => ctrConfig('mp', withSecurity({ masked_paths: ['proc/kcore'] })), INVALID_ARGUMENT, /masked_paths/),
    ctr('a read-only path climbing', () => ctrConfig('rp', withSecurity({ readonly_paths: ['/proc/../../etc'] })), INVALID_ARGUMENT, /readonly_paths/),
    ctr('a relative working_dir', () => ctrConfig('wd', { working_dir: 'app' }), INVALID_ARGUMENT, /working_dir/),
    ctr('a mount path longer than PATH_MAX', () => ctrConfig('pm', { mounts: [{ container_path: `/${big(5000)}`, host_path: '/tmp', readonly: true }] }), INVALID_ARGUMENT, /4096/),
    ctr('1025 mounts', () => ctrConfig('many', { mounts: Array.from({ length: 1025 }, (_, i) => ({ container_path: `/m${i}`, host_path: '/tmp', readonly: true })) }), RESOURCE_EXHAUSTED, /mounts has 1025/),
    ctr('1025 devices', () => ctrConfig('devs', { devices: Array.from({ length: 1025 }, (_, i) => ({ container_path: `/dev/d${i}`, host_path: '/dev/null', permissions: 'r' })) }), RESOURCE_EXHAUSTED, /devices has 1025/),
    ctr('65537 supplemental groups', () => ctrConfig('grp', withSecurity({ supplemental_groups: Array.from({ length: 65537 }, () => '5') })), RESOURCE_EXHAUSTED, /supplemental_groups/),
    ctr('labels over 256 KiB', () => ctrConfig('lb', { labels: { a: big(257 * 1024) } }), RESOURCE_EXHAUSTED, /labels and annotations .* at most 262144/),
    ctr('an empty annotation key', () => ctrConfig('an', { annotations: { '': 'v' } }), INVALID_ARGUMENT, /annotation/),
    { name: 'a pod that does not exist', call: () => createIn(ctrConfig('nopod'), 'f'.repeat(64)), code: NOT_FOUND },
    { name: 'a pod id climbing out', call: () => createIn(ctrConfig('nopod2'), '../../../etc'), code: NOT_FOUND },
    { name: 'no pod id', call: () => createIn(ctrConfig('nopod3'), ''), code: INVALID_ARGUMENT, says: /pod_sandbox_id/ },
  ];
};

// ---- operations on containers and pods ----

const operationCases = (): Case[] => {
  const update = (label: string, r: object): Case => ({
    name: `UpdateContainerResources: ${label}`,
    call: () => rt().UpdateContainerResources({ container_id: running, linux: r }),
    code: INVALID_ARGUMENT,
    says: /cpu|memory|oom/,
  });
  return [
    { name: 'StartContainer of an unknown id', call: () => rt().StartContainer({ container_id: 'f'.repeat(64) }), code: NOT_FOUND },
    { name: 'StartContainer of an id climbing out', call: () => rt().StartContainer({ container_id: '../../../../bin/sh' }), code: NOT_FOUND },
    { name: 'ContainerStatus of a path', call: () => rt().ContainerStatus({ container_id: '/etc/passwd' }), code: NOT_FOUND },
    { name: 'PodSandboxStatus of a path', call: () => rt().PodSandboxStatus({ pod_sandbox_id: '../pods' }), code: NOT_FOUND },
    { name: 'ReopenContainerLog of an unknown id', call: () => rt().ReopenContainerLog({ container_id: 'nope' }), code: NOT_FOUND },
    { name: 'ReopenContainerLog of a container not running', call: () => rt().ReopenContainerLog({ container_id: created }), code: FAILED_PRECONDITION },
    { name: 'UpdateContainerResources of an unknown id', call: () => rt().UpdateContainerResources({ container_id: 'nope', linux: { cpu_shares: 2 } }), code: NOT_FOUND },
    update('cpu_shares -1', { cpu_shares: -1 }),
    update('cpu_quota -5', { cpu_quota: -5 }),
    update('memory_limit_in_bytes -1', { memory_limit_in_bytes: -1 }),
    update('oom_score_adj 5000', { oom_score_adj: 5000 }),
    { name: 'ExecSync in an unknown container', call: () => rt().ExecSync({ container_id: 'nope', cmd: ['true'], timeout: 5 }), code: NOT_FOUND },
    { name: 'ExecSync with no command', call: () => rt().ExecSync({ container_id: running, cmd: [], timeout: 5 }), code: INVALID_ARGUMENT, says: /cmd/ },
    { name: 'ExecSync with NUL in the command', call: () => rt().ExecSync({ container_id: running, cmd: ['tr\0ue'], timeout: 5 }), code: INVALID_ARGUMENT, says: /cmd/ },
    { name: 'ExecSync with a negative timeout', call: () => rt().ExecSync({ container_id: running, cmd: ['true'], timeout: -1 }), code: INVALID_ARGUMENT, says: /timeout/ },
    { name: 'a request message over 16 MiB', call: () => rt().Version({ version: big(17 * 1024 * 1024) }), code: RESOURCE_EXHAUSTED, says: /larger than max/ },
    { name: 'ExecSync in a container not running', call: () => rt().ExecSync({ container_id: created, cmd: ['true'], timeout: 5 }), code: FAILED_PRECONDITION },
  ];
};

// ---- streaming: Exec, Attach, PortForward ----

const streamingCases = (): Case[] => [
  { name: 'Exec in an unknown container', call: () => rt().Exec({ container_id: 'nope', cmd: ['sh'], stdout: true }), code: NOT_FOUND },
  { name: 'Exec with no command', call: () => rt().Exec({ container_id: running, cmd: [], stdout: true }), code: INVALID_ARGUMENT, says: /cmd/ },
  { name: 'Exec with NUL in the command', call: () => rt().Exec({ container_id: running, cmd: ['s\0h'], stdout: true }), code: INVALID_ARGUMENT, says: /cmd/ },
  { name: 'Exec with a tty and a separate stderr', call: () => rt().Exec({ container_id: running, cmd: ['sh'], tty: true, stdout: true, stderr: true }), code: INVALID_ARGUMENT, says: /tty/ },
  { name: 'Exec with no stream at all', call: () => rt().Exec({ container_id: running, cmd: ['sh'] }), code: INVALID_ARGUMENT, says: /stdin|stdout|stderr/ },
  { name: 'Exec in a container not running', call: () => rt().Exec({ container_id: created, cmd: ['sh'], stdout: true }), code: FAILED_PRECONDITION },
  { name: 'Attach to an unknown container', call: () => rt().Attach({ container_id: 'nope', stdout: true }), code: NOT_FOUND },
  { name: 'Attach with a tty and a separate stderr', call: () => rt().Attach({ container_id: running, tty: true, stdout: true, stderr: true }), code: INVALID_ARGUMENT, says: /tty/ },
  { name: 'Attach with no stream at all', call: () => rt().Attach({ container_id: running }), code: INVALID_ARGUMENT, says: /stdin|stdout|stderr/ },
  { name: 'PortForward to an unknown pod', call: () => rt().PortForward({ pod_sandbox_id: 'nope', port: [80] }), code: NOT_FOUND },
  { name: 'PortForward to port 0', call: () => rt().PortForward({ pod_sandbox_id: pod.id, port: [0] }), code: INVALID_ARGUMENT, says: /port/ },
  { name: 'PortForward to port 70000', call: () => rt().PortForward({ pod_sandbox_id: pod.id, port: [70000] }), code: INVALID_ARGUMENT, says: /port/ },
  { name: 'PortForward to port -1', call: () => rt().PortForward({ pod_sandbox_id: pod.id, port: [-1] }), code: INVALID_ARGUMENT, says: /port/ },
];

// ---- images: references, and what a hostile registry serves ----

interface Served {
  contentType: string;
  body: Buffer;
  /** Docker-Content-Digest to claim (else the body's). */
  digest?: string;
}

/** A registry that serves, per repository, exactly the manifest and blobs a case gives. */
function hostileRegistry(): { host: () => string; serve: (repo: string, manifest: Served, blobs?: readonly Blob[]) => string; close: () => Promise<void> } {
  const manifests = new Map<string, Served>();
  const blobs = new Map<string, Buffer>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    const m = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(url);
    const served = m ? manifests.get(m[1]) : undefined;
    if (served) {
      const digest = served.digest ?? sha256(served.body);
      return void res.writeHead(200, { 'content-type': served.contentType, 'docker-content-digest': digest, 'content-length': served.body.length }).end(served.body);
    }
    const b = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url);
    const blob = b ? blobs.get(b[1]) : undefined;
    if (blob) return void res.writeHead(200, { 'content-length': blob.length }).end(blob);
    res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  return {
    host: () => `127.0.0.1:${(server.address() as AddressInfo).port}`,
    serve(repo, manifest, extra = []) {
      manifests.set(repo, manifest);
      for (const l of extra) blobs.set(l.digest, l.data);
      return `127.0.0.1:${(server.address() as AddressInfo).port}/${repo}:latest`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let registry: ReturnType<typeof hostileRegistry>;

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** An image whose parts the case spoils: the manifest, the config and the layers are served as given. */
function spoiled(repo: string, spoil: (m: Record<string, unknown>, image: BuiltImage) => void, contentType = OCI_MANIFEST): () => Promise<unknown> {
  return () => {
    const image = buildImage([layer([{ type: 'file', path: `f-${repo}`, content: `${repo}\n` }])]);
    const manifest = JSON.parse(image.manifest.data.toString()) as Record<string, unknown>;
    spoil(manifest, image);
    const ref = registry.serve(repo, { contentType, body: json(manifest) }, [image.config, ...image.layers]);
    return img().PullImage({ image: { image: ref } });
  };
}

/** An image with one layer whose tar stream the case gives. */
function withLayer(repo: string, tarball: Buffer): () => Promise<unknown> {
  return () => {
    const image = buildImage([layerFromTar(tarball)]);
    const ref = registry.serve(repo, { contentType: image.manifest.mediaType, body: image.manifest.data }, [image.config, ...image.layers]);
    return img().PullImage({ image: { image: ref } });
  };
}

const imageCases = (): Case[] => {
  const badRef = (label: string, ref: string): Case => ({ name: `PullImage of ${label}`, call: () => img().PullImage({ image: { image: ref } }), code: INVALID_ARGUMENT });
  const host = () => registry.host();
  return [
    badRef('an empty reference', ''),
    badRef('a space', ' '),
    badRef('upper-case letters in the repository', '127.0.0.1:5000/Busy/Box'),
    badRef('a reference with a space', 'busy box:1'),
    badRef('a short digest', 'busybox@sha256:abc'),
    badRef('an unknown digest algorithm', `busybox@md5:${'a'.repeat(32)}`),
    badRef('a tag with a bad character', 'busybox:la!test'),
    badRef('a tag of 129 characters', `busybox:${big(129)}`),
    badRef('a repository of 300 characters', `${'a'.repeat(300)}:1`),
    badRef('a path climbing', '../../etc/passwd'),
    badRef('an empty tag', 'busybox:'),
    badRef('a double slash', 'library//busybox'),
    badRef('NUL', 'busy\0box'),
    { name: 'ImageStatus of a malformed reference', call: () => img().ImageStatus({ image: { image: 'UPPER:case:x' } }), code: INVALID_ARGUMENT },
    { name: 'RemoveImage of a malformed reference', call: () => img().RemoveImage({ image: { image: 'a b' } }), code: INVALID_ARGUMENT },
    { name: 'a manifest of an unknown media type', call: () => spoiled('unknown-type', () => undefined, 'application/vnd.evil.manifest+json')(), code: INVALID_ARGUMENT, says: /media type/ },
    {
      name: 'a Docker schema 1 manifest',
      call: () => spoiled('schema1', (m) => Object.assign(m, { schemaVersion: 1, mediaType: undefined }), 'application/vnd.docker.distribution.manifest.v1+prettyjws')(),
      code: INVALID_ARGUMENT,
      says: /schema 1/,
    },
    { name: 'a manifest whose own mediaType contradicts its label', call: () => spoiled('contradict', (m) => (m.mediaType = OCI_INDEX))(), code: INVALID_ARGUMENT, says: /index|manifest/ },
    {
      name: 'an artifact config',
      call: () => spoiled('artifact', (m) => ((m.config as Record<string, unknown>).mediaType = 'application/vnd.cncf.helm.config.v1+json'))(),
      code: INVALID_ARGUMENT,
      says: /config/,
    },
    {
      name: 'a layer of an unknown media type',
      call: () => spoiled('layer-type', (m) => ((m.layers as Array<Record<string, unknown>>)[0].mediaType = 'application/x-evil'))(),
      code: INVALID_ARGUMENT,
      says: /media ?type/i,
    },
    {
      name: 'a config declared over 8 MiB',
      call: () => spoiled('huge-config', (m) => ((m.config as Record<string, unknown>).size = 9 * 1024 * 1024))(),
      code: RESOURCE_EXHAUSTED,
      says: /config/,
    },
    {
      name: 'a config whose bytes do not match its digest',
      call: () =>
        spoiled('config-digest', (m, image) => {
          (image.config as { data: Buffer }).data = Buffer.from(image.config.data.toString().replace('amd64', 'arm64'));
          void m;
        })(),
      code: INVALID_ARGUMENT,
      says: /digest/,
    },
    {
      name: 'a layer whose bytes do not match its digest',
      call: () => spoiled('layer-digest', (_m, image) => void ((image.layers[0] as { data: Buffer }).data = zlib.gzipSync(tar([{ type: 'file', path: 'other', content: 'other' }]))))(),
      code: INVALID_ARGUMENT,
    },
    {
      name: 'more layers than the config has diff_ids',
      call: () => spoiled('diff-count', (m) => (m.layers as unknown[]).push((m.layers as unknown[])[0]))(),
      code: INVALID_ARGUMENT,
      says: /diff_ids/,
    },
    { name: 'a manifest that is not JSON', call: () => Promise.resolve(registry.serve('not-json', { contentType: OCI_MANIFEST, body: Buffer.from('{"schemaVersion": 2,') })).then((ref) => img().PullImage({ image: { image: ref } })), code: INVALID_ARGUMENT },
    { name: 'a manifest that is a JSON array', call: () => Promise.resolve(registry.serve('array', { contentType: OCI_MANIFEST, body: Buffer.from('[1,2,3]') })).then((ref) => img().PullImage({ image: { image: ref } })), code: INVALID_ARGUMENT },
    {
      name: 'a manifest over 4 MiB',
      call: () => Promise.resolve(registry.serve('big-manifest', { contentType: OCI_MANIFEST, body: json({ schemaVersion: 2, pad: big(5 * 1024 * 1024) }) })).then((ref) => img().PullImage({ image: { image: ref } })),
      code: RESOURCE_EXHAUSTED,
    },
    {
      name: 'an index pointing at an index',
      call: () => {
        const inner = json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
        const innerDigest = sha256(inner);
        registry.serve('inner', { contentType: OCI_INDEX, body: inner });
        const outer = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, digest: innerDigest, size: inner.length, platform: { os: 'linux', architecture: 'amd64' } }] };
        return img().PullImage({ image: { image: registry.serve('nested', { contentType: OCI_INDEX, body: json(outer) }) } });
      },
      code: INVALID_ARGUMENT,
    },
    {
      name: 'a manifest whose body does not match the digest pulled',
      call: () => {
        registry.serve('by-digest', { contentType: OCI_MANIFEST, body: json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }) });
        return img().PullImage({ image: { image: `${host()}/by-digest@sha256:${'0'.repeat(64)}` } });
      },
      code: INVALID_ARGUMENT,
      says: /digest/,
    },
    { name: 'a layer with an entry climbing out', call: withLayer('climb', tar([{ type: 'file', path: '../../../escape', content: 'x' }])), code: INVALID_ARGUMENT, says: /\.\./ },
    { name: 'a layer with an absolute symlink target it then writes through', call: withLayer('symlink-through', tar([{ type: 'symlink', path: 'etc', target: '/etc' }, { type: 'file', path: 'etc/berth-escape', content: 'x' }])), code: INVALID_ARGUMENT },
    { name: 'a layer that is not a tar stream', call: withLayer('not-tar', Buffer.from('this is no tar archive, just some bytes'.repeat(20))), code: INVALID_ARGUMENT },
  ];
};

// ---- gRPC framing, on berthd's own socket ----

const versionBytes = () => Buffer.from(loadCri().runtime.v1.RuntimeService.service.Version.requestSerialize({ version: 'v1' }) as Buffer);

const framingCases = (): Array<{ name: string; headers?: Record<string, string>; body: () => Buffer; grpcStatus?: grpc.status; httpStatus?: number; method?: string }> => [
  { name: 'a message flag of 2', body: () => prefixed(versionBytes(), 2), grpcStatus: INTERNAL },
  { name: 'the compressed flag without an encoding', body: () => prefixed(versionBytes(), 1), grpcStatus: INTERNAL },
  { name: 'an unknown encoding', headers: { 'grpc-encoding': 'snappy' }, body: () => prefixed(versionBytes(), 1), grpcStatus: UNIMPLEMENTED },
  { name: 'a gzip body that is not gzip', headers: { 'grpc-encoding': 'gzip' }, body: () => prefixed(Buffer.from('not gzip'), 1), grpcStatus: INTERNAL },
  { name: 'a gzip bomb over 16 MiB inflated', headers: { 'grpc-encoding': 'gzip' }, body: () => prefixed(zlib.gzipSync(Buffer.alloc(20 * 1024 * 1024)), 1), grpcStatus: RESOURCE_EXHAUSTED },
  { name: 'a length prefix larger than the stream', body: () => prefixed(versionBytes()).subarray(0, 7), grpcStatus: INTERNAL },
  { name: 'no message on a unary call', body: () => Buffer.alloc(0), grpcStatus: UNIMPLEMENTED },
  { name: 'two messages on a unary call', body: () => Buffer.concat([prefixed(versionBytes()), prefixed(versionBytes())]), grpcStatus: UNIMPLEMENTED },
  { name: 'bytes that are not the request message', body: () => prefixed(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), grpcStatus: INVALID_ARGUMENT },
  { name: 'an unknown method', method: '/runtime.v1.RuntimeService/RmRfSlash', body: () => prefixed(versionBytes()), grpcStatus: UNIMPLEMENTED },
  { name: 'a content type that is not gRPC', headers: { 'content-type': 'text/plain' }, body: () => prefixed(versionBytes()), httpStatus: 415 },
];

describe('hostile requests', () => {
  beforeAll(async () => {
    env = await startPodDaemon('berth-hostile', { name: `hostile-${tag}`, bridge: `bhst${tag}`, subnet: `10.126.${process.pid % 250}` });
    profiles = path.join(env.dir, 'profiles');
    fs.mkdirSync(profiles);
    fs.writeFileSync(path.join(profiles, 'garbage.json'), '{"defaultAction": ');
    fs.writeFileSync(path.join(profiles, 'bad-action.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_EXPLODE' }));
    fs.writeFileSync(path.join(profiles, 'no-names.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] }));
    fs.mkdirSync(path.join(env.dir, 'logs'));
    const config = podConfig('target');
    pod = { id: (await runPod(config)).pod_sandbox_id, config };
    running = (await createIn(ctrConfig('running'))).container_id;
    await rt().StartContainer({ container_id: running });
    created = (await createIn(ctrConfig('created'))).container_id;
    registry = hostileRegistry();
  });

  afterAll(async () => {
    await registry?.close();
    await stopPodDaemon(env);
  });

  describe('pods', () => {
    it.each(podCases().map((c) => [c.name, c] as const))('%s', async (_name, c) => check(c));
  });

  describe('containers', () => {
    it.each(containerCases().map((c) => [c.name, c] as const))('%s', async (_name, c) => check(c));
  });

  describe('operations', () => {
    it.each(operationCases().map((c) => [c.name, c] as const))('%s', async (_name, c) => check(c));
  });

  describe('streaming', () => {
    it.each(streamingCases().map((c) => [c.name, c] as const))('%s', async (_name, c) => check(c));
  });

  describe('images', () => {
    it.each(imageCases().map((c) => [c.name, c] as const))('%s', { timeout: 30_000 }, async (_name, c) => check(c));
  });

  describe('gRPC framing', () => {
    it.each(framingCases().map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const before = snapshot();
      const answer = await rawGrpc(env.berthd.socket, c.method ?? '/runtime.v1.RuntimeService/Version', c.headers ?? {}, c.body());
      if (c.httpStatus) expect(answer.status).toBe(c.httpStatus);
      else expect({ status: answer.status, grpcStatus: answer.grpcStatus }).toEqual({ status: 200, grpcStatus: String(c.grpcStatus) });
      expect(snapshot()).toEqual(before);
    });
  });

  it('served the target pod and its containers throughout', async () => {
    expect((await rt().ContainerStatus({ container_id: running })).status?.state).toBe('CONTAINER_RUNNING');
    expect((await rt().ExecSync({ container_id: running, cmd: ['echo', 'alive'], timeout: 10 })).stdout.toString()).toBe('alive\n');
    const counted = podCases().length + containerCases().length + operationCases().length + streamingCases().length + imageCases().length + framingCases().length;
    expect(counted).toBeGreaterThanOrEqual(150);
  });
});
