import type { ListContainersRequest__Output } from '../../generated/runtime/v1/ListContainersRequest';
import type { ListContainersResponse } from '../../generated/runtime/v1/ListContainersResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { containerListItem, STATES } from './container-message';

export function listContainers(deps: ServerDeps): UnaryHandler<ListContainersRequest__Output, ListContainersResponse> {
  return async (request) => {
    const f = request.filter;
    const records = await deps.containers.list({
      id: f?.id || undefined,
      podId: f?.pod_sandbox_id || undefined,
      state: f?.state ? STATES[f.state.state] : undefined,
      labels: f?.label_selector,
    });
    return { containers: records.map(containerListItem) };
  };
}
