// Translations between CRI pod sandbox messages and berth's sandbox spec and records.
import net from 'node:net';
import type { PodSandboxConfig__Output } from '../../generated/runtime/v1/PodSandboxConfig';
import type { PodSandbox } from '../../generated/runtime/v1/PodSandbox';
import type { PodSandboxStatus } from '../../generated/runtime/v1/PodSandboxStatus';
import { InvalidArgumentError } from '../../errors';
import { absoluteCleanPath } from '../../util/path-rules';
import { checkConfinement } from './confinement';
import { seccompOf } from './seccomp-request';
import { hostname, inRange, labelsAndAnnotations, listSize, metadataName, sysctlValue } from './field-rules';
import type { PortMapping } from '../../network/cni-network';
import type { PodResources, SandboxRecord, SandboxSpec } from '../../pod/sandbox';
import type { LinuxContainerResources__Output } from '../../generated/runtime/v1/LinuxContainerResources';
import { resourcesSpec } from './container-message';
import { CRI_MODES, MODES } from './namespace-modes';
import { criUserns, usernsOf } from './userns-request';


const PROTOCOLS: ReadonlySet<unknown> = new Set(['TCP', 'UDP', 'SCTP']);

function portMappings(config: PodSandboxConfig__Output): PortMapping[] {
  listSize('port_mappings', config.port_mappings).forEach((p, i) => {
    if (!PROTOCOLS.has(p.protocol)) throw new InvalidArgumentError(`port_mappings[${i}].protocol ${JSON.stringify(p.protocol)} is not TCP, UDP or SCTP`);
    inRange(`port_mappings[${i}].container_port`, p.container_port, 1, 65535);
    inRange(`port_mappings[${i}].host_port`, p.host_port, 0, 65535);
    if (p.host_ip && net.isIP(p.host_ip) === 0) throw new InvalidArgumentError(`port_mappings[${i}].host_ip ${JSON.stringify(p.host_ip)} is not an IP address`);
  });
  return config.port_mappings
    .filter((p) => p.host_port > 0)
    .map((p) => ({
      hostPort: p.host_port,
      containerPort: p.container_port,
      protocol: p.protocol.toLowerCase() as PortMapping['protocol'],
      ...(p.host_ip ? { hostIP: p.host_ip } : {}),
    }));
}

const QUANTITY_SUFFIX: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50,
};

/** A Kubernetes quantity ("10M", "1Gi", "500k") as a number. */
export function parseQuantity(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`${what}: ${JSON.stringify(text)} is not a quantity such as 10M or 1Gi`);
  return Math.round(Number(m[1]) * QUANTITY_SUFFIX[m[2] ?? '']);
}

function bandwidthOf(annotations: Record<string, string>): SandboxSpec['bandwidth'] {
  const ingress = annotations['kubernetes.io/ingress-bandwidth'];
  const egress = annotations['kubernetes.io/egress-bandwidth'];
  if (!ingress && !egress) return undefined;
  return {
    ...(ingress ? { ingressRate: parseQuantity(ingress, 'kubernetes.io/ingress-bandwidth') } : {}),
    ...(egress ? { egressRate: parseQuantity(egress, 'kubernetes.io/egress-bandwidth') } : {}),
  };
}

/**
 * The pod's namespace modes. A pod with its own user namespace keeps its network, IPC and PID namespaces
 * too (the kubelet's rule for hostUsers: false): the host's would be owned by the host's user namespace.
 */
function namespacesOf(config: PodSandboxConfig__Output): Pick<SandboxSpec, 'namespaces' | 'userns'> {
  const ns = config.linux?.security_context?.namespace_options;
  const namespaces = { network: MODES[ns?.network ?? 'POD'], pid: MODES[ns?.pid ?? 'POD'], ipc: MODES[ns?.ipc ?? 'POD'] };
  const userns = usernsOf('linux.security_context.namespace_options.userns_options', ns?.userns_options);
  if (userns) {
    for (const [kind, mode] of Object.entries(namespaces)) {
      if (mode === 'node') throw new InvalidArgumentError(`a pod with its own user namespace cannot use the host's ${kind} namespace`);
    }
  }
  return { namespaces, ...(userns ? { userns } : {}) };
}

export function sandboxSpec(config: PodSandboxConfig__Output | null, handler: string): SandboxSpec {
  if (!config) throw new InvalidArgumentError('RunPodSandbox: config is missing');
  const meta = config.metadata;
  if (!meta) throw new InvalidArgumentError('RunPodSandbox: config.metadata is missing');
  labelsAndAnnotations('pod', config.labels, config.annotations);
  checkConfinement('pod', { apparmor: config.linux?.security_context?.apparmor, selinux: config.linux?.security_context?.selinux_options });
  // The pod's seccomp profile is checked like a container's; it would confine only the pod's init, which
  // runs berth's own code and no image's (docs/architecture.md).
  seccompOf(config.linux?.security_context);
  return {
    name: metadataName('metadata.name', meta.name),
    uid: metadataName('metadata.uid', meta.uid),
    namespace: metadataName('metadata.namespace', meta.namespace),
    attempt: meta.attempt,
    hostname: hostname(config.hostname),
    logDirectory: config.log_directory ? absoluteCleanPath('log_directory', config.log_directory) : '',
    dns: {
      servers: [...listSize('dns_config.servers', config.dns_config?.servers ?? [])],
      searches: [...listSize('dns_config.searches', config.dns_config?.searches ?? [])],
      options: [...listSize('dns_config.options', config.dns_config?.options ?? [])],
    },
    portMappings: portMappings(config),
    labels: config.labels,
    annotations: config.annotations,
    cgroupParent: config.linux?.cgroup_parent ?? '',
    sysctls: Object.fromEntries(listSize('linux.sysctls', Object.entries(config.linux?.sysctls ?? {})).map(([k, v]) => [k, sysctlValue(k, v)])),
    ...namespacesOf(config),
    privileged: config.linux?.security_context?.privileged ?? false,
    runtimeHandler: handler,
    bandwidth: bandwidthOf(config.annotations),
    podResources: podResourcesOf(config.linux?.overhead, config.linux?.resources),
  };
}

/** The pod-level overhead and resources (checked like a container's), undefined when neither is given. */
export function podResourcesOf(overhead: LinuxContainerResources__Output | null | undefined, resources: LinuxContainerResources__Output | null | undefined): SandboxSpec['podResources'] {
  const of = (r: LinuxContainerResources__Output | null | undefined): PodResources | undefined => {
    if (!r) return undefined;
    const spec = resourcesSpec(r);
    inRange('oom_score_adj', Number(r.oom_score_adj), -1000, 1000);
    return { cpuPeriod: spec.cpuPeriod, cpuQuota: spec.cpuQuota, cpuShares: spec.cpuShares, memoryLimit: spec.memoryLimit, cpusetCpus: spec.cpusetCpus, cpusetMems: spec.cpusetMems };
  };
  const out = { overhead: of(overhead), resources: of(resources) };
  return out.overhead || out.resources ? out : undefined;
}

const metadataOf = (r: SandboxRecord) => ({ name: r.spec.name, uid: r.spec.uid, namespace: r.spec.namespace, attempt: r.spec.attempt });
const stateOf = (r: SandboxRecord): 'SANDBOX_READY' | 'SANDBOX_NOTREADY' => (r.state === 'ready' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY');

export function sandboxListItem(r: SandboxRecord): PodSandbox {
  return {
    id: r.id,
    metadata: metadataOf(r),
    state: stateOf(r),
    created_at: r.createdAt,
    labels: r.spec.labels,
    annotations: r.spec.annotations,
    runtime_handler: r.spec.runtimeHandler,
  };
}

export function sandboxStatus(r: SandboxRecord): PodSandboxStatus {
  const [ip = '', ...more] = r.state === 'ready' ? r.ips : [];
  return {
    ...sandboxListItem(r),
    network: { ip, additional_ips: more.map((a) => ({ ip: a })) },
    linux: {
      namespaces: {
        options: {
          network: CRI_MODES[r.spec.namespaces.network],
          pid: CRI_MODES[r.spec.namespaces.pid],
          ipc: CRI_MODES[r.spec.namespaces.ipc],
          userns_options: criUserns(r.spec.userns),
        },
      },
    },
  };
}
