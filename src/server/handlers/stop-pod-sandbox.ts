import type { StopPodSandboxRequest__Output } from '../../generated/runtime/v1/StopPodSandboxRequest';
import type { StopPodSandboxResponse } from '../../generated/runtime/v1/StopPodSandboxResponse';
import { InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function stopPodSandbox(deps: ServerDeps): UnaryHandler<StopPodSandboxRequest__Output, StopPodSandboxResponse> {
  return async (request) => {
    if (!request.pod_sandbox_id) throw new InvalidArgumentError('StopPodSandbox: pod_sandbox_id is empty');
    await deps.pods.stop(request.pod_sandbox_id);
    return {};
  };
}
