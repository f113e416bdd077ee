import type { StreamPodSandboxStatsRequest__Output } from '../../generated/runtime/v1/StreamPodSandboxStatsRequest';
import type { StreamPodSandboxStatsResponse } from '../../generated/runtime/v1/StreamPodSandboxStatsResponse';
import type { StreamHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { podsStats } from './list-pod-sandbox-stats';
import { pages } from './pages';

/** ListPodSandboxStats' items, sampled once and built a page at a time (pages.ts). */
export function streamPodSandboxStats(deps: ServerDeps): StreamHandler<StreamPodSandboxStatsRequest__Output, StreamPodSandboxStatsResponse> {
  return async function* (request) {
    const { count, item } = await podsStats(deps, request.filter);
    for await (const page of pages(count, item)) yield { pod_sandbox_stats: page };
  };
}
