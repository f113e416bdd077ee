import type { RunPodSandboxRequest__Output } from '../../generated/runtime/v1/RunPodSandboxRequest';
import type { RunPodSandboxResponse } from '../../generated/runtime/v1/RunPodSandboxResponse';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors';
import { handlerFeatures } from '../../oci/handlers';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { sandboxSpec } from './sandbox-message';

export function runPodSandbox(deps: ServerDeps): UnaryHandler<RunPodSandboxRequest__Output, RunPodSandboxResponse> {
  return async (request) => {
    const handler = request.runtime_handler || deps.config.runtime.default_handler;
    if (!(handler in deps.config.runtime.handlers)) {
      throw new InvalidArgumentError(`unknown runtime handler ${JSON.stringify(request.runtime_handler)}: configured are ${Object.keys(deps.config.runtime.handlers).join(', ')}`);
    }
    const spec = sandboxSpec(request.config, request.runtime_handler);
    if (spec.userns && !handlerFeatures(deps.config.runtime.handlers[handler].runtime_path).userNamespaces) {
      throw new FailedPreconditionError(`runtime handler ${JSON.stringify(handler)} cannot run a pod in its own user namespace (Status lists what each handler can do)`);
    }
    const id = await deps.pods.run(spec, JSON.stringify([request.config, request.runtime_handler]));
    return { pod_sandbox_id: id };
  };
}
