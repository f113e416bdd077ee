import type { UpdatePodSandboxResourcesRequest__Output } from '../../generated/runtime/v1/UpdatePodSandboxResourcesRequest';
import type { UpdatePodSandboxResourcesResponse } from '../../generated/runtime/v1/UpdatePodSandboxResourcesResponse';
import { InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { podResourcesOf } from './sandbox-message';

/** Called after the kubelet has resized the pod's cgroup: the new overhead and resources are kept. */
export function updatePodSandboxResources(deps: ServerDeps): UnaryHandler<UpdatePodSandboxResourcesRequest__Output, UpdatePodSandboxResourcesResponse> {
  return async (request) => {
    if (!request.pod_sandbox_id) throw new InvalidArgumentError('UpdatePodSandboxResources: pod_sandbox_id is empty');
    await deps.pods.updateResources(request.pod_sandbox_id, podResourcesOf(request.overhead, request.resources));
    return {};
  };
}
