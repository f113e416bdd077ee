import type { PodSandboxStatsRequest__Output } from '../../generated/runtime/v1/PodSandboxStatsRequest';
import type { PodSandboxStatsResponse } from '../../generated/runtime/v1/PodSandboxStatsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import type { SandboxRecord } from '../../pod/sandbox';
import type { PodSandboxStats } from '../../generated/runtime/v1/PodSandboxStats';
import { containerStatsMessage, podStatsMessage } from './stats-message';

/** Pods' usage with their running containers', all sampled in one batch. */
export async function podStats(deps: ServerDeps, pods: readonly SandboxRecord[]): Promise<PodSandboxStats[]> {
  const running = await deps.containers.list({ state: 'running' });
  const wanted = new Set(pods.map((p) => p.id));
  const containers = running.filter((c) => wanted.has(c.podId));
  const usage = await deps.stats.sample(containers, pods, deps.config.root);
  const byPod = new Map<string, ReturnType<typeof containerStatsMessage>[]>();
  containers.forEach((c, i) => {
    const list = byPod.get(c.podId) ?? [];
    list.push(containerStatsMessage(c, usage.containers[i]));
    byPod.set(c.podId, list);
  });
  return pods.map((p, k) => podStatsMessage(p, usage.pods[k], byPod.get(p.id) ?? []));
}

export function podSandboxStats(deps: ServerDeps): UnaryHandler<PodSandboxStatsRequest__Output, PodSandboxStatsResponse> {
  return async (request) => ({ stats: (await podStats(deps, [deps.pods.status(request.pod_sandbox_id)]))[0] });
}
