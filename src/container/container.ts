// What berth knows of a container: the spec it was asked for (translated from the CRI config by the
// gRPC layer) and what berth made for it. Records are kept under <root>/containers/<id>.json.
import type { ProcessIdentity } from '../util/process';
import type { ContainerRequest } from './oci-spec';
import type { UserNamespaceSpec } from '../pod/sandbox';

export interface ContainerSpec {
  name: string;
  attempt: number;
  /** The image as the kubelet named it. */
  image: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Relative to the pod's log directory. */
  logPath: string;
  stdinOnce: boolean;
  /** e.g. "SIGTERM"; empty: the image's STOPSIGNAL, else SIGTERM. */
  stopSignal: string;
  user: { runAsUser?: number; runAsUsername?: string; runAsGroup?: number; supplementalGroups: number[]; supplementalGroupsPolicy?: 'merge' | 'strict' };
  devices: Array<{ containerPath: string; hostPath: string; permissions: string }>;
  /** CDI devices by qualified name (CDI_devices and the cdi.k8s.io/ annotations). */
  cdiDevices?: string[];
  /** The target container of a TARGET PID namespace. */
  pidTarget: string;
  /** A `localhost/<path>` seccomp profile's path (the profile itself is read at create). */
  seccompProfilePath: string;
  /** The user namespace the request named ('node': the host's); absent: the pod's. Must be the pod's. */
  userns?: UserNamespaceSpec | 'node';
  process: ContainerRequest;
}

export type ContainerState = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerExit {
  exitCode: number;
  /** Completed, Error, OOMKilled, or why berth could not tell. */
  reason: string;
  message: string;
  /** Nanoseconds since the epoch, as a decimal string. */
  finishedAt: string;
}

/**
 * Where a container is in its life as berth makes and unmakes it (write-ahead intent): the record is
 * written `creating` before CreateContainer's first side effect and `created` after its last;
 * `removing` before RemoveContainer's first, and the record is deleted after its last. Start-up
 * reconciliation rolls `creating` back and `removing` forward. Records from before phases were kept
 * have none: created.
 */
export type ContainerPhase = 'creating' | 'created' | 'removing';

export interface ContainerRecord {
  id: string;
  phase?: ContainerPhase;
  /** k8s_<container>_<pod>_<namespace>_<uid>_<attempt>. */
  fullName: string;
  podId: string;
  spec: ContainerSpec;
  requestKey: string;
  handler: string;
  image: { id: string; name: string; ref: string; layers: string[]; stopSignal: string };
  /** The images of its image volumes, by the index of their mount: kept from image GC like the rootfs's. */
  imageVolumes?: Array<{ mount: number; id: string; layers: string[] }>;
  state: ContainerState;
  /** Nanoseconds since the epoch, as decimal strings. */
  createdAt: string;
  startedAt?: string;
  exit?: ContainerExit;
  /** The container's init on the host, and its monitor. */
  pid?: number;
  monitor?: ProcessIdentity;
  /** The user the container's process runs as, resolved at create. */
  user?: { uid: number; gid: number; additionalGids: number[] };
  /** Absolute log file path ('' when the pod has no log directory). */
  logPath: string;
  cgroup: string;
  /** Volatile: bundle, monitor files. */
  stateDir: string;
  /** Persistent: the writable layer. */
  containerDir: string;
}

export function containerFullName(spec: Pick<ContainerSpec, 'name' | 'attempt'>, pod: { name: string; namespace: string; uid: string }): string {
  return `k8s_${spec.name}_${pod.name}_${pod.namespace}_${pod.uid}_${spec.attempt}`;
}

/** RFC 3339 (with up to nanoseconds) to nanoseconds since the epoch. */
export function rfc3339ToNanos(text: string): string {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(text);
  const seconds = m ? Date.parse(`${m[1]}Z`) / 1000 : Date.parse(text) / 1000;
  const fraction = m?.[2] ? m[2].padEnd(9, '0').slice(0, 9) : '000000000';
  return (BigInt(Math.floor(seconds)) * 1_000_000_000n + BigInt(fraction)).toString();
}

/** The signal StopContainer sends first: the request's, else the image's STOPSIGNAL (as the image gives it), else SIGTERM. */
export const stopSignalOf = (r: Pick<ContainerRecord, 'spec' | 'image'>): string => r.spec.stopSignal || r.image.stopSignal || 'SIGTERM';

export const nowNanos = (): string => (BigInt(Date.now()) * 1_000_000n).toString();
