import type { RemoveContainerRequest__Output } from '../../generated/runtime/v1/RemoveContainerRequest';
import type { RemoveContainerResponse } from '../../generated/runtime/v1/RemoveContainerResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { InvalidArgumentError } from '../../errors';

export function removeContainer(deps: ServerDeps): UnaryHandler<RemoveContainerRequest__Output, RemoveContainerResponse> {
  return async (request) => {
    if (!request.container_id) throw new InvalidArgumentError('RemoveContainer: container_id is empty');
    await deps.containers.remove(request.container_id);
    return {};
  };
}
