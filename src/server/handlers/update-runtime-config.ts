import type { UpdateRuntimeConfigRequest__Output } from '../../generated/runtime/v1/UpdateRuntimeConfigRequest';
import type { UpdateRuntimeConfigResponse } from '../../generated/runtime/v1/UpdateRuntimeConfigResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

/** The kubelet pushes the node's pod CIDR here; CNI IPAM receives it as the ipRanges capability. */
export function updateRuntimeConfig(deps: ServerDeps): UnaryHandler<UpdateRuntimeConfigRequest__Output, UpdateRuntimeConfigResponse> {
  return async (request) => {
    const cidr = request.runtime_config?.network_config?.pod_cidr ?? '';
    if (cidr) deps.network.setPodCidr(cidr);
    return {};
  };
}
