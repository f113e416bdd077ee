import type { PodSandboxStatsRequest__Output } from '../../generated/runtime/v1/PodSandboxStatsRequest';
import type { PodSandboxStatsResponse } from '../../generated/runtime/v1/PodSandboxStatsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import type { SandboxRecord } from '../../pod/sandbox';
import type { PodSandboxStats } from '../../generated/runtime/v1/PodSandboxStats';
import { containerStatsMessage, podStatsMessage } from './stats-message';

/** Pods' usage with their running containers', all sampled in one batch: item k builds pod k's message. */
export async function podStats(deps: ServerDeps, pods: readonly SandboxRecord[]): Promise<(k: number) => PodSandboxStats> {
  // Per pod, so that a pod's filter leaves the other pods' monitors unprobed.
  const ofPods = await Promise.all(pods.map((p) => deps.containers.list({ podId: p.id, state: 'running' })));
  const batch = await deps.stats.sample(ofPods.flat(), pods, deps.config.root);
  // Pod k's containers are items first[k] .. first[k] + ofPods[k].length - 1 of the batch.
  const first: number[] = [];
  let next = 0;
  for (const ofPod of ofPods) {
    first.push(next);
    next += ofPod.length;
  }
  return (k) => {
    const ofPod = ofPods[k].map((c, j) => containerStatsMessage(c, batch.container(first[k] + j)));
    return podStatsMessage(pods[k], batch.pod(k), ofPod);
  };
}

export function podSandboxStats(deps: ServerDeps): UnaryHandler<PodSandboxStatsRequest__Output, PodSandboxStatsResponse> {
  return async (request) => ({ stats: (await podStats(deps, [deps.pods.status(request.pod_sandbox_id)]))(0) });
}
