import type { StatusRequest__Output } from '../../generated/runtime/v1/StatusRequest';
import type { StatusResponse } from '../../generated/runtime/v1/StatusResponse';
import type { RuntimeCondition } from '../../generated/runtime/v1/RuntimeCondition';
import { handlerFeatures, listHandlers } from '../../oci/handlers';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

async function networkCondition(deps: ServerDeps): Promise<RuntimeCondition> {
  const lookup = await deps.network.networkConfig();
  if (lookup.ready) return { type: 'NetworkReady', status: true };
  return { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: lookup.message };
}

export function status(deps: ServerDeps): UnaryHandler<StatusRequest__Output, StatusResponse> {
  return async (request) => {
    const conditions: RuntimeCondition[] = [{ type: 'RuntimeReady', status: true }, await networkCondition(deps)];
    const info: Record<string, string> = {};
    if (request.verbose) info.config = JSON.stringify(deps.config);
    return {
      status: { conditions },
      info,
      runtime_handlers: listHandlers(deps.config).map((h) => {
        const f = handlerFeatures(h.runtimePath);
        return { name: h.name, features: { recursive_read_only_mounts: f.recursiveReadOnlyMounts, user_namespaces: f.userNamespaces } };
      }),
      features: { supplemental_groups_policy: true },
    };
  };
}
