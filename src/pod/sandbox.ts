// What berth knows of a pod sandbox: the spec it was asked for (translated from the CRI config by the
// gRPC layer) and what berth made for it. Records are kept under <root>/pods/<id>.json, written before the
// first side effect (see SandboxState); everything else berth makes for a pod is named from its id.
import type { DnsConfig } from './pod-files';
import type { PortMapping } from '../network/cni-network';

export type NamespaceMode = 'pod' | 'container' | 'node' | 'target';

/** One range of a user namespace's map: container ids [containerId, containerId + length) are host ids from hostId. */
export interface IdMapping {
  containerId: number;
  hostId: number;
  length: number;
}

/** The pod's own user namespace (the CRI's NamespaceMode POD): one uid and one gid range, container id 0 mapped. */
export interface UserNamespaceSpec {
  uids: IdMapping;
  gids: IdMapping;
}

const sameMapping = (a: IdMapping, b: IdMapping): boolean => a.containerId === b.containerId && a.hostId === b.hostId && a.length === b.length;

/** Whether two user namespace specs are the same (undefined: the host's). */
export const sameUserns = (a: UserNamespaceSpec | undefined, b: UserNamespaceSpec | undefined): boolean =>
  a === undefined || b === undefined ? a === b : sameMapping(a.uids, b.uids) && sameMapping(a.gids, b.gids);

export interface SandboxSpec {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
  hostname: string;
  logDirectory: string;
  dns: DnsConfig;
  portMappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  cgroupParent: string;
  sysctls: Record<string, string>;
  namespaces: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode };
  /** Absent: the host's user namespace (NODE). */
  userns?: UserNamespaceSpec;
  /** The pod may hold privileged containers (the kubelet sets it when one of them is); absent in records from before it was kept. */
  privileged?: boolean;
  runtimeHandler: string;
  /** Traffic shaping from the kubernetes.io/{ingress,egress}-bandwidth annotations, in bits per second. */
  bandwidth?: { ingressRate?: number; egressRate?: number };
  /**
   * The pod-level resources the kubelet gave (RunPodSandbox, then UpdatePodSandboxResources): kept as the
   * pod's configuration, as containerd keeps them; the kubelet sets the pod cgroup's limits itself.
   */
  podResources?: { overhead?: PodResources; resources?: PodResources };
}

/** A pod's resources as the CRI's LinuxContainerResources give them (the fields berth checks). */
export interface PodResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimit?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
}

/**
 * The record's phase. `creating` is written before RunPodSandbox's first side effect and `removing`
 * before RemovePodSandbox's, so a crash in either is rolled back (or forward) at start-up; both are
 * NOTREADY to the kubelet, and a `creating` sandbox is not listed.
 */
export type SandboxState = 'creating' | 'ready' | 'notready' | 'removing';

export interface SandboxRecord {
  id: string;
  /** The kubelet-style unique name: k8s_POD_<name>_<namespace>_<uid>_<attempt>. */
  fullName: string;
  spec: SandboxSpec;
  /** The request as received, to recognise a retried RunPodSandbox. */
  requestKey: string;
  state: SandboxState;
  /** Nanoseconds since the epoch, as a decimal string. */
  createdAt: string;
  ips: string[];
  pins: { net?: string; ipc?: string; uts?: string; pid?: string; user?: string };
  /** The init of the pod's shared PID namespace, when its PID namespace mode is POD. */
  init?: { pid: number; startTime: string };
  cgroup: string;
  /** Whether berth made the cgroup (and so removes it). */
  ownsCgroup: boolean;
  /** Per-pod files (hostname, hosts, resolv.conf) and the shm mount, under the state dir. */
  stateDir: string;
  shm?: string;
  network?: { name: string; ifname: string };
}

export function fullNameOf(spec: Pick<SandboxSpec, 'name' | 'namespace' | 'uid' | 'attempt'>): string {
  return `k8s_POD_${spec.name}_${spec.namespace}_${spec.uid}_${spec.attempt}`;
}
