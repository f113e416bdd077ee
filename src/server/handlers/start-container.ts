import type { StartContainerRequest__Output } from '../../generated/runtime/v1/StartContainerRequest';
import type { StartContainerResponse } from '../../generated/runtime/v1/StartContainerResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function startContainer(deps: ServerDeps): UnaryHandler<StartContainerRequest__Output, StartContainerResponse> {
  return async (request) => {
    await deps.containers.start(request.container_id);
    return {};
  };
}
