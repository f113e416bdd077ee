import type { PortForwardRequest__Output } from '../../generated/runtime/v1/PortForwardRequest';
import type { PortForwardResponse } from '../../generated/runtime/v1/PortForwardResponse';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function portForward(deps: ServerDeps): UnaryHandler<PortForwardRequest__Output, PortForwardResponse> {
  return async (request) => {
    if (!request.pod_sandbox_id) throw new InvalidArgumentError('PortForward: pod_sandbox_id is empty');
    const pod = deps.pods.status(request.pod_sandbox_id);
    if (pod.state !== 'ready') throw new FailedPreconditionError(`PortForward: pod sandbox ${pod.id} is not ready`);
    return { url: deps.streaming.register({ podId: pod.id, ports: request.port }) };
  };
}
