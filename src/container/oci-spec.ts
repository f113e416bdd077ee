// The OCI runtime spec (config.json) of a container, from what the CRI asked for, the pod it runs in
// and its image's config. Pure: no I/O here, so every rule is unit-tested.
import { InvalidArgumentError } from '../errors';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  RUNTIME_DEFAULT_DENIED_SYSCALLS,
} from './defaults';
import type { ResolvedUser } from './users';
import type { IdMapping, UserNamespaceSpec } from '../pod/sandbox';
import type { AppArmorRequest } from './apparmor';

export type Propagation = 'private' | 'rslave' | 'rshared';

export interface ContainerRequest {
  command: string[];
  args: string[];
  workingDir: string;
  env: Array<[string, string]>;
  /**
   * recursiveReadOnly: read-only down to every mount below it too (the "rro" option). idmap: the mappings
   * the CRI gave the mount (an idmapped mount; berth allows only the pod's user namespace's). An image
   * volume is always read-only.
   */
  mounts: Array<{
    containerPath: string;
    /** For an image volume: '' in the request, the volume's mounted dir (or the sub path in it) in the bundle. */
    hostPath: string;
    readonly: boolean;
    recursiveReadOnly?: boolean;
    propagation: Propagation;
    idmap?: UserNamespaceSpec;
    /** An image volume (the CRI's Mount.image): the image as the kubelet named it and the sub path in it. */
    image?: { ref: string; subPath: string };
  }>;
  tty: boolean;
  stdin: boolean;
  privileged: boolean;
  /** ambient: raised in the process (and so kept across exec by a non-root user); each is added too. */
  capabilities: { add: string[]; drop: string[]; ambient?: string[] };
  noNewPrivs: boolean;
  readonlyRootfs: boolean;
  /** undefined: the defaults; [] (from an unmasked procMount) is sent by the kubelet as a list anyway. */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  seccomp: { kind: 'runtime-default' | 'unconfined' } | { kind: 'localhost'; profile: unknown };
  /** What the request asks of AppArmor (records from before it was kept have none: the runtime default). */
  appArmor?: AppArmorRequest;
  /** The AppArmor profile the process execs into, as the bundle resolved it on this host. */
  appArmorProfile?: string;
  pidNamespace: 'pod' | 'container' | 'node' | 'target';
  resources: {
    cpuPeriod?: number;
    cpuQuota?: number;
    cpuShares?: number;
    memoryLimit?: number;
    memorySwapLimit?: number;
    cpusetCpus?: string;
    cpusetMems?: string;
    hugepages?: Array<{ pageSize: string; limit: number }>;
    unified?: Record<string, string>;
  };
  oomScoreAdj?: number;
  sysctls?: Record<string, string>;
  rlimits?: Array<{ type: string; hard: number; soft: number }>;
  /** Host devices made available, already resolved to their numbers. */
  devices?: HostDevice[];
  /** Mounts as the OCI spec gives them (from CDI devices), after the CRI's. */
  extraMounts?: OciMount[];
}

export interface HostDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  /** cgroup access: some of "rwm". */
  permissions: string;
  /** The node's owner in the container (default 0). */
  uid?: number;
  gid?: number;
}

export interface ImageConfigView {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
}

export interface PodView {
  hostname: string;
  /** Paths of pinned namespaces; undefined means the host's. */
  netns?: string;
  ipcns?: string;
  utsns?: string;
  pidns?: string;
  /** The pod's own user namespace: its pin and its maps. */
  userns?: { path: string; maps: UserNamespaceSpec };
  files: { hostname: string; hosts: string; resolvConf: string };
  shm?: string;
  cgroupsPath: string;
  /** cgroup v2 host: containers get a private cgroup namespace (privileged ones keep the host's, as containerd does). */
  cgroupV2?: boolean;
  /** The lowest oom_score_adj this host lets berth set (no CAP_SYS_RESOURCE: the current value). */
  minOomScoreAdj: number;
}

export interface OciMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
  uidMappings?: OciMapping[];
  gidMappings?: OciMapping[];
}

const ociMappings = (m: IdMapping): OciMapping[] => [{ containerID: m.containerId, hostID: m.hostId, size: m.length }];

export interface OciSpec {
  ociVersion: string;
  process: Record<string, unknown> & { args: string[]; env: string[]; cwd: string };
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: Record<string, unknown> & { namespaces: Array<{ type: string; path?: string }> };
  annotations?: Record<string, string>;
}

/** The kubelet's rule: command replaces ENTRYPOINT (and drops CMD); args alone replace CMD. */
export function processArgs(req: Pick<ContainerRequest, 'command' | 'args'>, image: ImageConfigView): string[] {
  const entrypoint = image.Entrypoint ?? [];
  const cmd = image.Cmd ?? [];
  const args = req.command.length ? [...req.command, ...req.args] : [...entrypoint, ...(req.args.length ? req.args : cmd)];
  if (args.length === 0) throw new InvalidArgumentError('no command: neither the container config nor the image gives one');
  return args;
}

/** Image env first, then the CRI's (a later key replaces an earlier one in place). */
export function processEnv(req: Pick<ContainerRequest, 'env'>, image: ImageConfigView, hostname: string): string[] {
  const env = new Map<string, string>();
  for (const kv of image.Env ?? []) {
    const i = kv.indexOf('=');
    env.set(i === -1 ? kv : kv.slice(0, i), i === -1 ? '' : kv.slice(i + 1));
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  env.set('HOSTNAME', hostname);
  for (const [k, v] of req.env) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

const capName = (c: string): string => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);

/**
 * The container's capabilities. "All" (privileged, or add ALL) means all that the host's bounding set
 * still has: a runtime cannot grant more, and asking for more makes it fail (as containerd does).
 */
export function capabilities(req: Pick<ContainerRequest, 'privileged' | 'capabilities'>, hostCapabilities: readonly string[] = ALL_CAPABILITIES): string[] {
  if (req.privileged) return ALL_CAPABILITIES.filter((c) => hostCapabilities.includes(c));
  const dropAll = req.capabilities.drop.some((c) => c.toUpperCase() === 'ALL');
  const addAll = req.capabilities.add.some((c) => c.toUpperCase() === 'ALL');
  let caps = new Set(dropAll ? [] : DEFAULT_CAPABILITIES);
  for (const c of req.capabilities.drop) caps.delete(capName(c));
  if (addAll) caps = new Set(ALL_CAPABILITIES.filter((c) => hostCapabilities.includes(c)));
  for (const c of req.capabilities.add) {
    if (c.toUpperCase() === 'ALL') continue;
    const name = capName(c);
    if (!ALL_CAPABILITIES.includes(name)) throw new InvalidArgumentError(`unknown capability ${JSON.stringify(c)}`);
    caps.add(name);
  }
  return ALL_CAPABILITIES.filter((c) => caps.has(c));
}

/**
 * Ambient capabilities (add_ambient_capabilities): the kernel keeps one ambient only while it is also
 * permitted and inheritable, so they are listed in both. Each must be one the container has.
 */
function ambientCaps(req: Pick<ContainerRequest, 'capabilities'>, caps: readonly string[]): { inheritable?: string[]; ambient?: string[] } {
  const ambient = (req.capabilities.ambient ?? []).map(capName);
  if (ambient.length === 0) return {};
  for (const c of ambient) {
    if (!ALL_CAPABILITIES.includes(c)) throw new InvalidArgumentError(`unknown ambient capability ${JSON.stringify(c)}`);
    if (!caps.includes(c)) throw new InvalidArgumentError(`ambient capability ${c} is not one the container has: add it to add_capabilities too`);
  }
  return { inheritable: ambient, ambient };
}

function defaultMounts(pod: PodView, readonlySys: boolean): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', readonlySys ? 'ro' : 'rw'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', readonlySys ? 'ro' : 'rw'] },
    pod.shm
      ? { destination: '/dev/shm', type: 'bind', source: pod.shm, options: ['rbind', 'rw'] }
      : { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/etc/hostname', type: 'bind', source: pod.files.hostname, options: ['rbind', 'rw'] },
    { destination: '/etc/hosts', type: 'bind', source: pod.files.hosts, options: ['rbind', 'rw'] },
    { destination: '/etc/resolv.conf', type: 'bind', source: pod.files.resolvConf, options: ['rbind', 'rw'] },
  ];
}

function criMounts(req: ContainerRequest): OciMount[] {
  return req.mounts.map((m) => {
    if (!m.containerPath.startsWith('/')) throw new InvalidArgumentError(`mount container_path ${JSON.stringify(m.containerPath)} is not absolute`);
    return {
      destination: m.containerPath,
      type: 'bind',
      source: m.hostPath,
      options: ['rbind', m.propagation, m.readonly ? 'ro' : 'rw', ...(m.recursiveReadOnly ? ['rro'] : [])],
      ...(m.idmap ? { uidMappings: ociMappings(m.idmap.uids), gidMappings: ociMappings(m.idmap.gids) } : {}),
    };
  });
}

/** CRI mounts replace default mounts at the same destination (e.g. a user's own /etc/hosts). */
function mergeMounts(defaults: OciMount[], user: OciMount[]): OciMount[] {
  const taken = new Set(user.map((m) => m.destination.replace(/\/+$/, '')));
  return [...defaults.filter((m) => !taken.has(m.destination)), ...user];
}

function seccomp(req: ContainerRequest): unknown {
  if (req.privileged || req.seccomp.kind === 'unconfined') return undefined;
  if (req.seccomp.kind === 'localhost') return req.seccomp.profile;
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
    syscalls: [{ names: RUNTIME_DEFAULT_DENIED_SYSCALLS, action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  };
}

/** The cgroup limits of CRI resources as OCI LinuxResources (also what a live `update` applies). */
export function ociResources(r: ContainerRequest['resources']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const cpu: Record<string, unknown> = {};
  if (r.cpuShares) cpu.shares = r.cpuShares;
  if (r.cpuQuota) cpu.quota = r.cpuQuota;
  if (r.cpuPeriod) cpu.period = r.cpuPeriod;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (r.memoryLimit) out.memory = { limit: r.memoryLimit, ...(r.memorySwapLimit ? { swap: r.memorySwapLimit } : {}) };
  if (r.hugepages?.length) out.hugepageLimits = r.hugepages.map((h) => ({ pageSize: h.pageSize, limit: h.limit }));
  if (r.unified && Object.keys(r.unified).length) out.unified = r.unified;
  return out;
}

/**
 * The resources after a live update: what the update sets over what was there. A field it leaves unset
 * (0, '', an empty list or map: the same test ociResources applies) keeps its value, as it keeps its
 * cgroup value.
 */
export function updatedResources(current: ContainerRequest['resources'], update: ContainerRequest['resources']): ContainerRequest['resources'] {
  const isSet = (v: unknown): boolean =>
    Array.isArray(v) ? v.length > 0 : typeof v === 'object' && v !== null ? Object.keys(v).length > 0 : Boolean(v);
  const given = Object.entries(update).filter(([, v]) => isSet(v));
  return { ...current, ...(Object.fromEntries(given) as ContainerRequest['resources']) };
}

function resources(req: ContainerRequest): Record<string, unknown> {
  const devices: Array<Record<string, unknown>> = [{ allow: req.privileged, access: 'rwm' }];
  for (const d of req.devices ?? []) devices.push({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.permissions });
  return { devices, ...ociResources(req.resources) };
}

/**
 * Mounts that propagate need the container's mount namespace to stay a peer (rshared) or a slave
 * (rslave) of the host's; otherwise the runtime's default makes every mount a one-way slave.
 */
function rootfsPropagation(req: ContainerRequest): { rootfsPropagation?: string } {
  if (req.mounts.some((m) => m.propagation === 'rshared')) return { rootfsPropagation: 'rshared' };
  if (req.mounts.some((m) => m.propagation === 'rslave')) return { rootfsPropagation: 'rslave' };
  return {};
}

export function buildOciSpec(
  req: ContainerRequest,
  image: ImageConfigView,
  pod: PodView,
  user: ResolvedUser,
  rootfs: string,
  hostCapabilities: readonly string[] = ALL_CAPABILITIES,
): OciSpec {
  const caps = capabilities(req, hostCapabilities);
  const namespaces: Array<{ type: string; path?: string }> = [{ type: 'mount' }];
  const join = (type: string, p: string | undefined) => namespaces.push(p ? { type, path: p } : { type });
  if (pod.userns) join('user', pod.userns.path);
  if (pod.netns) join('network', pod.netns);
  if (pod.ipcns) join('ipc', pod.ipcns);
  if (pod.utsns) join('uts', pod.utsns);
  if (req.pidNamespace === 'container') namespaces.push({ type: 'pid' });
  else if (req.pidNamespace === 'pod' && pod.pidns) join('pid', pod.pidns);
  // 'node': no pid namespace entry, the host's is kept.
  if (pod.cgroupV2 && !req.privileged) namespaces.push({ type: 'cgroup' });
  const oomScoreAdj = req.oomScoreAdj === undefined ? undefined : Math.max(req.oomScoreAdj, pod.minOomScoreAdj);
  const sec = seccomp(req);
  const linux: OciSpec['linux'] = {
    namespaces,
    ...(pod.userns ? { uidMappings: ociMappings(pod.userns.maps.uids), gidMappings: ociMappings(pod.userns.maps.gids) } : {}),
    ...rootfsPropagation(req),
    cgroupsPath: pod.cgroupsPath,
    resources: resources(req),
    ...(req.sysctls && Object.keys(req.sysctls).length ? { sysctl: req.sysctls } : {}),
    ...(req.privileged ? {} : { maskedPaths: req.maskedPaths ?? DEFAULT_MASKED_PATHS, readonlyPaths: req.readonlyPaths ?? DEFAULT_READONLY_PATHS }),
    ...(sec ? { seccomp: sec } : {}),
    ...(req.devices?.length
      ? { devices: req.devices.map((d) => ({ path: d.path, type: d.type, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid ?? 0, gid: d.gid ?? 0 })) }
      : {}),
  };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: req.tty,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: processArgs(req, image),
      env: processEnv(req, image, pod.hostname),
      cwd: req.workingDir || image.WorkingDir || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ...ambientCaps(req, caps) },
      noNewPrivileges: req.noNewPrivs,
      ...(req.appArmorProfile ? { apparmorProfile: req.appArmorProfile } : {}),
      ...(req.rlimits?.length ? { rlimits: req.rlimits.map((l) => ({ type: l.type, hard: l.hard, soft: l.soft })) } : {}),
      ...(oomScoreAdj !== undefined ? { oomScoreAdj } : {}),
    },
    root: { path: rootfs, readonly: req.readonlyRootfs },
    // Only a container with the pod's own UTS namespace has a hostname to set (runtimes refuse otherwise).
    ...(pod.utsns ? { hostname: pod.hostname } : {}),
    mounts: mergeMounts(defaultMounts(pod, !req.privileged), [...criMounts(req), ...(req.extraMounts ?? [])]),
    linux,
  };
}
