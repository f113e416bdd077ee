import type { VersionRequest__Output } from '../../generated/runtime/v1/VersionRequest';
import type { VersionResponse } from '../../generated/runtime/v1/VersionResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

/** The only CRI API version berth speaks. */
export const CRI_API_VERSION = 'v1';
/** The `version` field is the kubelet-facing API version string every CRI runtime returns. */
const KUBELET_API_VERSION = '0.1.0';

export function version(deps: ServerDeps): UnaryHandler<VersionRequest__Output, VersionResponse> {
  return async () => ({
    version: KUBELET_API_VERSION,
    runtime_name: 'berth',
    runtime_version: deps.version,
    runtime_api_version: CRI_API_VERSION,
  });
}
