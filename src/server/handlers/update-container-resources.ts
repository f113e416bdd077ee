import type { UpdateContainerResourcesRequest__Output } from '../../generated/runtime/v1/UpdateContainerResourcesRequest';
import type { UpdateContainerResourcesResponse } from '../../generated/runtime/v1/UpdateContainerResourcesResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { resourcesSpec } from './container-message';
import { inRange } from './field-rules';

export function updateContainerResources(deps: ServerDeps): UnaryHandler<UpdateContainerResourcesRequest__Output, UpdateContainerResourcesResponse> {
  return async (request) => {
    // berth does not change a running container's oom_score_adj (nor do containerd and CRI-O), but a value
    // out of the kernel's range is still the client's mistake.
    if (request.linux) inRange('linux.oom_score_adj', Number(request.linux.oom_score_adj), -1000, 1000);
    await deps.containers.update(request.container_id, resourcesSpec(request.linux));
    return {};
  };
}
