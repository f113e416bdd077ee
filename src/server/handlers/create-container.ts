import type { CreateContainerRequest__Output } from '../../generated/runtime/v1/CreateContainerRequest';
import type { CreateContainerResponse } from '../../generated/runtime/v1/CreateContainerResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { InvalidArgumentError } from '../../errors';
import { containerSpec } from './container-message';

export function createContainer(deps: ServerDeps): UnaryHandler<CreateContainerRequest__Output, CreateContainerResponse> {
  return async (request) => {
    if (!request.pod_sandbox_id) throw new InvalidArgumentError('CreateContainer: pod_sandbox_id is empty');
    const spec = containerSpec(request.config);
    const id = await deps.containers.create(request.pod_sandbox_id, spec, JSON.stringify([request.pod_sandbox_id, request.config]));
    return { container_id: id };
  };
}
