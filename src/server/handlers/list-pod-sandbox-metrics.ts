import type { ListPodSandboxMetricsRequest__Output } from '../../generated/runtime/v1/ListPodSandboxMetricsRequest';
import type { ListPodSandboxMetricsResponse } from '../../generated/runtime/v1/ListPodSandboxMetricsResponse';
import type { PodSandboxMetrics } from '../../generated/runtime/v1/PodSandboxMetrics';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { podsStats } from './list-pod-sandbox-stats';
import { podMetrics } from './pod-metrics';

/** Every ready pod's metrics, built from one stats sample: how many, and pod i's on demand. */
export async function podsMetrics(deps: ServerDeps): Promise<{ count: number; item: (i: number) => PodSandboxMetrics }> {
  const images = new Map((await deps.containers.list({ state: 'running' })).map((c) => [c.id, c.image.name]));
  const { count, item } = await podsStats(deps, null);
  return { count, item: (i) => podMetrics(item(i), (id) => images.get(id) ?? '') };
}

export function listPodSandboxMetrics(deps: ServerDeps): UnaryHandler<ListPodSandboxMetricsRequest__Output, ListPodSandboxMetricsResponse> {
  return async () => {
    const { count, item } = await podsMetrics(deps);
    return { pod_metrics: Array.from({ length: count }, (_x, i) => item(i)) };
  };
}
