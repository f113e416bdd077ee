import type { ReopenContainerLogRequest__Output } from '../../generated/runtime/v1/ReopenContainerLogRequest';
import type { ReopenContainerLogResponse } from '../../generated/runtime/v1/ReopenContainerLogResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function reopenContainerLog(deps: ServerDeps): UnaryHandler<ReopenContainerLogRequest__Output, ReopenContainerLogResponse> {
  return async (request) => {
    await deps.containers.reopenLog(request.container_id);
    return {};
  };
}
