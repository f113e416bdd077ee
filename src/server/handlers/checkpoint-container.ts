import type { CheckpointContainerRequest__Output } from '../../generated/runtime/v1/CheckpointContainerRequest';
import type { CheckpointContainerResponse } from '../../generated/runtime/v1/CheckpointContainerResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function checkpointContainer(deps: ServerDeps): UnaryHandler<CheckpointContainerRequest__Output, CheckpointContainerResponse> {
  return async (request) => deps.containers.checkpoint(request.container_id, request.location);
}
