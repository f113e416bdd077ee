import type { RemovePodSandboxRequest__Output } from '../../generated/runtime/v1/RemovePodSandboxRequest';
import type { RemovePodSandboxResponse } from '../../generated/runtime/v1/RemovePodSandboxResponse';
import { InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function removePodSandbox(deps: ServerDeps): UnaryHandler<RemovePodSandboxRequest__Output, RemovePodSandboxResponse> {
  return async (request) => {
    if (!request.pod_sandbox_id) throw new InvalidArgumentError('RemovePodSandbox: pod_sandbox_id is empty');
    await deps.pods.remove(request.pod_sandbox_id);
    return {};
  };
}
