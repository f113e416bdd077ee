import type { UpdateContainerResourcesRequest__Output } from '../../generated/runtime/v1/UpdateContainerResourcesRequest';
import type { UpdateContainerResourcesResponse } from '../../generated/runtime/v1/UpdateContainerResourcesResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { resourcesSpec } from './container-message';

export function updateContainerResources(deps: ServerDeps): UnaryHandler<UpdateContainerResourcesRequest__Output, UpdateContainerResourcesResponse> {
  return async (request) => {
    await deps.containers.update(request.container_id, resourcesSpec(request.linux));
    return {};
  };
}
