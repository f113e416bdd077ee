import type { ListContainersRequest__Output } from '../../generated/runtime/v1/ListContainersRequest';
import type { ListContainersResponse } from '../../generated/runtime/v1/ListContainersResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { containerListItem, STATES } from './container-message';
import { whileSame } from '../../util/memo';
import type { ContainerRecord } from '../../container/container';

export function listContainers(deps: ServerDeps): UnaryHandler<ListContainersRequest__Output, ListContainersResponse> {
  // The unfiltered list (the kubelet's relist, every second) is built and encoded once per change.
  const all = whileSame((records: readonly ContainerRecord[]): ListContainersResponse => ({ containers: records.map(containerListItem) }));
  return async (request) => {
    const f = request.filter;
    const filter = {
      id: f?.id || undefined,
      podId: f?.pod_sandbox_id || undefined,
      state: f?.state ? STATES[f.state.state] : undefined,
      labels: f?.label_selector,
    };
    const records = await deps.containers.list(filter);
    if (!filter.id && !filter.podId && !filter.state && !Object.keys(filter.labels ?? {}).length) return all(records);
    return { containers: records.map(containerListItem) };
  };
}
