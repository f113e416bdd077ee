// Translations between CRI container messages and berth's container spec and records.
import type { ContainerConfig__Output } from '../../generated/runtime/v1/ContainerConfig';
import type { Container } from '../../generated/runtime/v1/Container';
import type { ContainerStatus } from '../../generated/runtime/v1/ContainerStatus';
import { Signal as SignalNames, type Signal } from '../../generated/runtime/v1/Signal';
import os from 'node:os';
import type { LinuxContainerResources, LinuxContainerResources__Output } from '../../generated/runtime/v1/LinuxContainerResources';
import type { Mount } from '../../generated/runtime/v1/Mount';
import type { MountPropagation__Output } from '../../generated/runtime/v1/MountPropagation';
import { stopSignalOf, type ContainerRecord, type ContainerSpec, type ContainerState } from '../../container/container';
import type { ContainerRequest, Propagation } from '../../container/oci-spec';
import { InvalidArgumentError, UnimplementedError } from '../../errors';
import { hostLsms } from '../../util/host-lsm';
import { absoluteCleanPath, mountDestination, relativeCleanPath } from '../../util/path-rules';
import { checkConfinement } from './confinement';
import { seccompOf } from './seccomp-request';
import { execSize, groupList, inRange, labelsAndAnnotations, listSize, metadataName, userId } from './field-rules';
import { MODES } from './namespace-modes';
import { usernsOf } from './userns-request';
import { cdiAnnotationDevices, checkCdiName } from '../../container/cdi';

const PROPAGATION: Record<MountPropagation__Output, Propagation> = {
  PROPAGATION_PRIVATE: 'private',
  PROPAGATION_HOST_TO_CONTAINER: 'rslave',
  PROPAGATION_BIDIRECTIONAL: 'rshared',
};
const CRI_PROPAGATION = { private: 'PROPAGATION_PRIVATE', rslave: 'PROPAGATION_HOST_TO_CONTAINER', rshared: 'PROPAGATION_BIDIRECTIONAL' } as const;

export const CRI_STATES = { created: 'CONTAINER_CREATED', running: 'CONTAINER_RUNNING', exited: 'CONTAINER_EXITED', unknown: 'CONTAINER_UNKNOWN' } as const;
export const STATES: Record<string, ContainerState> = { CONTAINER_CREATED: 'created', CONTAINER_RUNNING: 'running', CONTAINER_EXITED: 'exited', CONTAINER_UNKNOWN: 'unknown' };

/** An int64 field (a decimal string) at least `min`; 0 (unset) becomes undefined. */
const int = (field: string, text: string | undefined, min = 0): number | undefined => {
  const n = Number(text ?? '0');
  if (!Number.isSafeInteger(n) && !(Number.isInteger(n) && n > 0)) throw new InvalidArgumentError(`resources.${field} ${JSON.stringify(text)} is not an integer`);
  if (n < min) throw new InvalidArgumentError(`resources.${field} is ${n}; it must be ${min === 0 ? 'non-negative' : `at least ${min}`}`);
  return n !== 0 ? n : undefined;
};

export function resourcesSpec(r: LinuxContainerResources__Output | null | undefined): ContainerRequest['resources'] {
  if (!r) return {};
  return {
    cpuPeriod: int('cpu_period', r.cpu_period),
    // -1: no quota (cgroup v1's own value for it).
    cpuQuota: int('cpu_quota', r.cpu_quota, -1),
    cpuShares: int('cpu_shares', r.cpu_shares),
    memoryLimit: int('memory_limit_in_bytes', r.memory_limit_in_bytes),
    // -1: unlimited swap, as the kubelet's UnlimitedSwap sends it.
    memorySwapLimit: int('memory_swap_limit_in_bytes', r.memory_swap_limit_in_bytes, -1),
    cpusetCpus: r.cpuset_cpus || undefined,
    cpusetMems: r.cpuset_mems || undefined,
    hugepages: (r.hugepage_limits ?? []).map((h) => ({ pageSize: h.page_size, limit: Number(h.limit) })),
    unified: r.unified,
  };
}

/**
 * The working directory: absolute (as the OCI spec requires of process.cwd) and without NUL. It is
 * resolved inside the container, after the root is changed, so ".." cannot leave it: not held to "clean".
 */
function workingDir(dir: string): string {
  if (dir && (!dir.startsWith('/') || dir.includes('\0'))) throw new InvalidArgumentError(`working_dir ${JSON.stringify(dir)} must be an absolute path`);
  return dir;
}

/** A recursive read-only mount must be read-only and private (the kubelet's rule, and containerd's). */
function recursiveReadOnly(i: number, m: { readonly: boolean; propagation: string }): true {
  if (!m.readonly) throw new InvalidArgumentError(`mounts[${i}]: recursive_read_only needs readonly`);
  if (m.propagation && m.propagation !== 'PROPAGATION_PRIVATE') throw new InvalidArgumentError(`mounts[${i}]: recursive_read_only needs private propagation, not ${m.propagation}`);
  return true;
}

/**
 * A mount's source: a host path, or an image (an image volume, always read-only) with an optional sub
 * path inside it; never both.
 */
function mountSource(i: number, m: ContainerConfig__Output['mounts'][number]): { hostPath: string; readonly: boolean; image?: { ref: string; subPath: string } } {
  const ref = m.image?.image ?? '';
  if (!ref) {
    if (m.image_sub_path) throw new InvalidArgumentError(`mounts[${i}].image_sub_path is set but mounts[${i}].image is not`);
    return { hostPath: absoluteCleanPath(`mounts[${i}].host_path`, m.host_path), readonly: m.readonly };
  }
  if (m.host_path) throw new InvalidArgumentError(`mounts[${i}]: host_path and image are exclusive`);
  const subPath = m.image_sub_path ? relativeCleanPath(`mounts[${i}].image_sub_path`, m.image_sub_path) : '';
  return { hostPath: '', readonly: true, image: { ref, subPath } };
}

/** The CDI devices a container names: its CDI_devices field, then its cdi.k8s.io/ annotations. */
function cdiDevicesOf(config: ContainerConfig__Output): { cdiDevices?: string[] } {
  const named = listSize('CDI_devices', config.CDI_devices).map((d, i) => checkCdiName(`CDI_devices[${i}].name`, d.name));
  const all = [...named, ...cdiAnnotationDevices(config.annotations)];
  return all.length ? { cdiDevices: [...new Set(all)] } : {};
}

/** A mount's uidMappings and gidMappings (an idmapped mount): both or neither, one range each, as a pod's. */
function mountIdmap(i: number, m: Pick<ContainerConfig__Output['mounts'][number], 'uidMappings' | 'gidMappings'>) {
  if (!m.uidMappings.length && !m.gidMappings.length) return {};
  const idmap = usernsOf(`mounts[${i}]`, { mode: 'POD', uids: m.uidMappings, gids: m.gidMappings });
  return idmap ? { idmap } : {};
}

/** Paths inside the container (masked, read-only): absolute and clean, each. */
const containerPaths = (field: string, paths: string[]): string[] => listSize(field, paths).map((p, i) => absoluteCleanPath(`${field}[${i}]`, p));

export function containerSpec(config: ContainerConfig__Output | null): ContainerSpec {
  if (!config) throw new InvalidArgumentError('CreateContainer: config is missing');
  const meta = config.metadata;
  if (!meta?.name) throw new InvalidArgumentError('CreateContainer: config.metadata.name is empty');
  if (/[\s/_]/.test(meta.name)) throw new InvalidArgumentError(`container name ${JSON.stringify(meta.name)} contains "/", "_" or spaces`);
  metadataName('metadata.name', meta.name);
  labelsAndAnnotations('container', config.labels, config.annotations);
  if (!config.image?.image) throw new InvalidArgumentError('CreateContainer: config.image.image is empty');
  const sc = config.linux?.security_context;
  const ns = sc?.namespace_options;
  const { seccomp, path } = seccompOf(sc);
  const appArmor = checkConfinement(`container ${meta.name}`, { apparmor: sc?.apparmor, apparmorProfile: sc?.apparmor_profile, selinux: sc?.selinux_options });
  // Relabelling is for SELinux: nothing to do without it, and not done yet with it.
  if (config.mounts.some((m) => m.selinux_relabel) && hostLsms().selinux) {
    throw new UnimplementedError(`container ${meta.name}: a mount asks for SELinux relabelling; berth does not relabel yet`);
  }
  const process: ContainerRequest = {
    command: config.command,
    args: config.args,
    workingDir: workingDir(config.working_dir),
    env: config.envs.map((kv) => [kv.key, Buffer.from(kv.value).toString('utf8')]),
    mounts: listSize('mounts', config.mounts).map((m, i) => ({
      containerPath: mountDestination(`mounts[${i}].container_path`, m.container_path),
      ...mountSource(i, m),
      ...(m.recursive_read_only ? { recursiveReadOnly: recursiveReadOnly(i, m) } : {}),
      propagation: PROPAGATION[m.propagation] ?? 'private',
      ...mountIdmap(i, m),
    })),
    tty: config.tty,
    stdin: config.stdin,
    privileged: sc?.privileged ?? false,
    capabilities: {
      add: [...listSize('add_capabilities', sc?.capabilities?.add_capabilities ?? [])],
      drop: [...listSize('drop_capabilities', sc?.capabilities?.drop_capabilities ?? [])],
      ambient: [...listSize('add_ambient_capabilities', sc?.capabilities?.add_ambient_capabilities ?? [])],
    },
    noNewPrivs: sc?.no_new_privs ?? false,
    readonlyRootfs: sc?.readonly_rootfs ?? false,
    maskedPaths: sc?.masked_paths?.length ? containerPaths('masked_paths', sc.masked_paths) : undefined,
    readonlyPaths: sc?.readonly_paths?.length ? containerPaths('readonly_paths', sc.readonly_paths) : undefined,
    seccomp,
    appArmor,
    pidNamespace: MODES[ns?.pid ?? 'POD'],
    resources: resourcesSpec(config.linux?.resources),
    oomScoreAdj: config.linux?.resources ? inRange('resources.oom_score_adj', Number(config.linux.resources.oom_score_adj), -1000, 1000) : undefined,
  };
  execSize(process.command, process.args, process.env);
  return {
    name: meta.name,
    attempt: meta.attempt,
    image: config.image.image,
    labels: config.labels,
    annotations: config.annotations,
    logPath: config.log_path ? relativeCleanPath('log_path', config.log_path) : '',
    stdinOnce: config.stdin_once,
    stopSignal: config.stop_signal && config.stop_signal !== 'RUNTIME_DEFAULT' ? String(config.stop_signal) : '',
    user: {
      runAsUser: sc?.run_as_user ? userId('run_as_user', Number(sc.run_as_user.value)) : undefined,
      runAsUsername: sc?.run_as_username || undefined,
      runAsGroup: sc?.run_as_group ? userId('run_as_group', Number(sc.run_as_group.value)) : undefined,
      supplementalGroups: groupList('supplemental_groups', sc?.supplemental_groups ?? []).map((g, i) => userId(`supplemental_groups[${i}]`, Number(g))),
      supplementalGroupsPolicy: sc?.supplemental_groups_policy === 'Strict' ? 'strict' : 'merge',
    },
    devices: listSize('devices', config.devices).map((d, i) => ({
      containerPath: absoluteCleanPath(`devices[${i}].container_path`, d.container_path),
      hostPath: absoluteCleanPath(`devices[${i}].host_path`, d.host_path),
      permissions: d.permissions,
    })),
    ...cdiDevicesOf(config),
    pidTarget: ns?.target_id ?? '',
    seccompProfilePath: path,
    // No options: the pod's user namespace; options: they must be the pod's (checked at create).
    ...(ns?.userns_options ? { userns: usernsOf('linux.security_context.namespace_options.userns_options', ns.userns_options) ?? 'node' } : {}),
    process,
  };
}

const metadataOf = (r: ContainerRecord) => ({ name: r.spec.name, attempt: r.spec.attempt });

export function containerListItem(r: ContainerRecord): Container {
  return {
    id: r.id,
    pod_sandbox_id: r.podId,
    metadata: metadataOf(r),
    image: { image: r.image.name },
    image_ref: r.image.ref,
    image_id: r.image.id,
    state: CRI_STATES[r.state],
    created_at: r.createdAt,
    labels: r.spec.labels,
    annotations: r.spec.annotations,
  };
}

export function criResources(r: ContainerRequest['resources'], oomScoreAdj: number | undefined): LinuxContainerResources {
  return {
    cpu_period: String(r.cpuPeriod ?? 0),
    cpu_quota: String(r.cpuQuota ?? 0),
    cpu_shares: String(r.cpuShares ?? 0),
    memory_limit_in_bytes: String(r.memoryLimit ?? 0),
    memory_swap_limit_in_bytes: String(r.memorySwapLimit ?? 0),
    oom_score_adj: String(oomScoreAdj ?? 0),
    cpuset_cpus: r.cpusetCpus ?? '',
    cpuset_mems: r.cpusetMems ?? '',
    hugepage_limits: (r.hugepages ?? []).map((h) => ({ page_size: h.pageSize, limit: String(h.limit) })),
    unified: r.unified ?? {},
  };
}

const criMounts = (r: ContainerRecord): Mount[] =>
  r.spec.process.mounts.map((m) => ({
    container_path: m.containerPath,
    host_path: m.hostPath,
    readonly: m.readonly,
    recursive_read_only: m.recursiveReadOnly ?? false,
    propagation: CRI_PROPAGATION[m.propagation],
    ...(m.image ? { image: { image: m.image.ref }, image_sub_path: m.image.subPath } : {}),
  }));

/**
 * A record is never changed in place (each change is a new object), so its status message is built once
 * per record: the kubelet asks for each container's status on every pod sync, and PodSandboxStatus and
 * the event stream carry them too.
 */
const statusMessages = new WeakMap<ContainerRecord, ContainerStatus>();

export function containerStatusMessage(r: ContainerRecord): ContainerStatus {
  let message = statusMessages.get(r);
  if (!message) statusMessages.set(r, (message = buildStatusMessage(r)));
  return message;
}

function buildStatusMessage(r: ContainerRecord): ContainerStatus {
  return {
    id: r.id,
    metadata: metadataOf(r),
    state: CRI_STATES[r.state],
    created_at: r.createdAt,
    started_at: r.startedAt ?? '0',
    finished_at: r.exit?.finishedAt ?? '0',
    exit_code: r.exit?.exitCode ?? 0,
    image: { image: r.image.name },
    image_ref: r.image.ref,
    image_id: r.image.id,
    reason: r.exit?.reason ?? '',
    message: r.exit?.message ?? '',
    labels: r.spec.labels,
    annotations: r.spec.annotations,
    mounts: criMounts(r),
    log_path: r.logPath,
    resources: { linux: criResources(r.spec.process.resources, r.spec.process.oomScoreAdj) },
    ...(r.user ? { user: { linux: { uid: String(r.user.uid), gid: String(r.user.gid), supplemental_groups: r.user.additionalGids.map(String) } } } : {}),
    stop_signal: criStopSignal(r),
  };
}

/** The signal StopContainer sends first, as the CRI's Signal names it (an image may give a name or a number). */
function criStopSignal(r: ContainerRecord): Signal {
  const signal = stopSignalOf(r).trim().toUpperCase();
  const byName = signal.startsWith('SIG') ? signal : `SIG${signal}`;
  if (byName in SignalNames) return byName as Signal;
  const byNumber = Object.entries(os.constants.signals).find(([, n]) => String(n) === signal)?.[0];
  return byNumber && byNumber in SignalNames ? (byNumber as Signal) : 'RUNTIME_DEFAULT';
}
