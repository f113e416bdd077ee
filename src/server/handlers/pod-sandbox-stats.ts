import type { PodSandboxStatsRequest__Output } from '../../generated/runtime/v1/PodSandboxStatsRequest';
import type { PodSandboxStatsResponse } from '../../generated/runtime/v1/PodSandboxStatsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import type { SandboxRecord } from '../../pod/sandbox';
import type { PodSandboxStats } from '../../generated/runtime/v1/PodSandboxStats';
import { containerStatsMessage, podStatsMessage } from './stats-message';

/** A pod's usage with its running containers'. */
export async function podStats(deps: ServerDeps, pod: SandboxRecord): Promise<PodSandboxStats> {
  const containers = await deps.containers.list({ podId: pod.id, state: 'running' });
  const containerStats = await Promise.all(containers.map(async (r) => containerStatsMessage(r, await deps.stats.container(r, deps.config.root))));
  return podStatsMessage(pod, await deps.stats.pod(pod), containerStats);
}

export function podSandboxStats(deps: ServerDeps): UnaryHandler<PodSandboxStatsRequest__Output, PodSandboxStatsResponse> {
  return async (request) => ({ stats: await podStats(deps, deps.pods.status(request.pod_sandbox_id)) });
}
