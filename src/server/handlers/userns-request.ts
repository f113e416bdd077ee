// A pod's or container's user namespace options (NamespaceOption.userns_options): checked as the kubelet
// and critest expect of a runtime, and translated to berth's spec.
import type { IDMapping__Output } from '../../generated/runtime/v1/IDMapping';
import type { UserNamespace__Output } from '../../generated/runtime/v1/UserNamespace';
import { InvalidArgumentError } from '../../errors';
import type { IdMapping, UserNamespaceSpec } from '../../pod/sandbox';

const ID_LIMIT = 2 ** 32;

function oneMapping(field: string, list: IDMapping__Output[]): IdMapping {
  if (list.length !== 1) throw new InvalidArgumentError(`${field}: a pod's user namespace takes exactly one mapping, got ${list.length}`);
  const [m] = list;
  const mapping = { containerId: m.container_id, hostId: m.host_id, length: m.length };
  if (mapping.containerId !== 0) throw new InvalidArgumentError(`${field}[0]: container id 0 must be mapped (the mapping starts at ${mapping.containerId})`);
  if (mapping.length < 1) throw new InvalidArgumentError(`${field}[0]: length must be at least 1`);
  if (mapping.hostId + mapping.length > ID_LIMIT) throw new InvalidArgumentError(`${field}[0]: host ids ${mapping.hostId}+${mapping.length} go past 2^32`);
  // The host's root inside a pod's user namespace would give the pod the host's files.
  if (mapping.hostId === 0) throw new InvalidArgumentError(`${field}[0]: maps the host's id 0 into the pod`);
  return mapping;
}

/** Undefined for the host's user namespace (NODE, or no options); the mappings for POD. */
export function usernsOf(field: string, options: UserNamespace__Output | null | undefined): UserNamespaceSpec | undefined {
  if (!options || options.mode === 'NODE') {
    if (options && (options.uids.length || options.gids.length)) throw new InvalidArgumentError(`${field}: mode NODE takes no mappings`);
    return undefined;
  }
  if (options.mode !== 'POD') {
    throw new InvalidArgumentError(`${field}.mode ${String(options.mode)} is not supported: a pod has its own user namespace (POD) or the host's (NODE)`);
  }
  return { uids: oneMapping(`${field}.uids`, options.uids), gids: oneMapping(`${field}.gids`, options.gids) };
}

/** The CRI's form of a user namespace spec (PodSandboxStatus, ContainerStatus). */
export function criUserns(u: UserNamespaceSpec | undefined) {
  if (!u) return { mode: 'NODE' as const, uids: [], gids: [] };
  const cri = (m: IdMapping) => [{ container_id: m.containerId, host_id: m.hostId, length: m.length }];
  return { mode: 'POD' as const, uids: cri(u.uids), gids: cri(u.gids) };
}
