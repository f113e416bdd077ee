import type { PodSandboxStatsRequest__Output } from '../../generated/runtime/v1/PodSandboxStatsRequest';
import type { PodSandboxStatsResponse } from '../../generated/runtime/v1/PodSandboxStatsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import type { SandboxRecord } from '../../pod/sandbox';
import type { PodSandboxStats } from '../../generated/runtime/v1/PodSandboxStats';
import { containerStatsMessage, podStatsMessage } from './stats-message';

/** Pods' usage with their running containers', all sampled in one batch: item k builds pod k's message. */
export async function podStats(deps: ServerDeps, pods: readonly SandboxRecord[]): Promise<(k: number) => PodSandboxStats> {
  const running = await deps.containers.list({ state: 'running' });
  const wanted = new Set(pods.map((p) => p.id));
  const containers = running.filter((c) => wanted.has(c.podId));
  const batch = await deps.stats.sample(containers, pods, deps.config.root);
  const byPod = new Map<string, number[]>();
  containers.forEach((c, i) => byPod.set(c.podId, [...(byPod.get(c.podId) ?? []), i]));
  return (k) => {
    const p = pods[k];
    const ofPod = (byPod.get(p.id) ?? []).map((i) => containerStatsMessage(containers[i], batch.container(i)));
    return podStatsMessage(p, batch.pod(k), ofPod);
  };
}

export function podSandboxStats(deps: ServerDeps): UnaryHandler<PodSandboxStatsRequest__Output, PodSandboxStatsResponse> {
  return async (request) => ({ stats: (await podStats(deps, [deps.pods.status(request.pod_sandbox_id)]))(0) });
}
