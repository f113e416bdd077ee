import type { StopContainerRequest__Output } from '../../generated/runtime/v1/StopContainerRequest';
import type { StopContainerResponse } from '../../generated/runtime/v1/StopContainerResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { InvalidArgumentError } from '../../errors';

export function stopContainer(deps: ServerDeps): UnaryHandler<StopContainerRequest__Output, StopContainerResponse> {
  return async (request) => {
    if (!request.container_id) throw new InvalidArgumentError('StopContainer: container_id is empty');
    await deps.containers.stop(request.container_id, Math.max(0, Number(request.timeout)));
    return {};
  };
}
