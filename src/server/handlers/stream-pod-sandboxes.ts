import type { StreamPodSandboxesRequest__Output } from '../../generated/runtime/v1/StreamPodSandboxesRequest';
import type { StreamPodSandboxesResponse } from '../../generated/runtime/v1/StreamPodSandboxesResponse';
import type { StreamHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { sandboxFilter } from './list-pod-sandbox';
import { pagesOf } from './pages';
import { sandboxListItem } from './sandbox-message';

/** ListPodSandbox's items, a page at a time (pages.ts). */
export function streamPodSandboxes(deps: ServerDeps): StreamHandler<StreamPodSandboxesRequest__Output, StreamPodSandboxesResponse> {
  return async function* (request) {
    for await (const page of pagesOf(deps.pods.list(sandboxFilter(request.filter)))) yield { pod_sandboxes: page.map(sandboxListItem) };
  };
}
