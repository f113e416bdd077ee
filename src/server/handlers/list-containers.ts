import type { ListContainersRequest__Output } from '../../generated/runtime/v1/ListContainersRequest';
import type { ListContainersResponse } from '../../generated/runtime/v1/ListContainersResponse';
import type { ContainerFilter__Output } from '../../generated/runtime/v1/ContainerFilter';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { containerListItem, STATES } from './container-message';
import { whileSame } from '../../util/memo';
import type { ContainerRecord } from '../../container/container';

/** A CRI ContainerFilter as ContainerService.list takes it. */
export function containerFilter(f: ContainerFilter__Output | null | undefined) {
  return {
    id: f?.id || undefined,
    podId: f?.pod_sandbox_id || undefined,
    state: f?.state ? STATES[f.state.state] : undefined,
    labels: f?.label_selector,
  };
}

export function listContainers(deps: ServerDeps): UnaryHandler<ListContainersRequest__Output, ListContainersResponse> {
  // The unfiltered list (the kubelet's relist, every second) is built and encoded once per change.
  const all = whileSame((records: readonly ContainerRecord[]): ListContainersResponse => ({ containers: records.map(containerListItem) }));
  return async (request) => {
    const filter = containerFilter(request.filter);
    const records = await deps.containers.list(filter);
    if (!filter.id && !filter.podId && !filter.state && !Object.keys(filter.labels ?? {}).length) return all(records);
    return { containers: records.map(containerListItem) };
  };
}
