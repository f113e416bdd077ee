import type { StreamPodSandboxMetricsRequest__Output } from '../../generated/runtime/v1/StreamPodSandboxMetricsRequest';
import type { StreamPodSandboxMetricsResponse } from '../../generated/runtime/v1/StreamPodSandboxMetricsResponse';
import type { StreamHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { podsMetrics } from './list-pod-sandbox-metrics';
import { pages } from './pages';

/** ListPodSandboxMetrics' items, sampled once and built a page at a time (pages.ts). */
export function streamPodSandboxMetrics(deps: ServerDeps): StreamHandler<StreamPodSandboxMetricsRequest__Output, StreamPodSandboxMetricsResponse> {
  return async function* () {
    const { count, item } = await podsMetrics(deps);
    for await (const page of pages(count, item)) yield { pod_sandbox_metrics: page };
  };
}
