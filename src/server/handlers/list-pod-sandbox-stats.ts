import type { ListPodSandboxStatsRequest__Output } from '../../generated/runtime/v1/ListPodSandboxStatsRequest';
import type { ListPodSandboxStatsResponse } from '../../generated/runtime/v1/ListPodSandboxStatsResponse';
import type { PodSandboxStats } from '../../generated/runtime/v1/PodSandboxStats';
import type { PodSandboxStatsFilter__Output } from '../../generated/runtime/v1/PodSandboxStatsFilter';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { asResponse, encodeInSteps } from '../encoded-responses';
import { podStats } from './pod-sandbox-stats';

/** The stats of the ready pods a filter selects: how many, and item i built on demand. */
export async function podsStats(deps: ServerDeps, f: PodSandboxStatsFilter__Output | null | undefined): Promise<{ count: number; item: (i: number) => PodSandboxStats }> {
  const pods = deps.pods.list({ id: f?.id || undefined, labels: f?.label_selector, state: 'ready' });
  return { count: pods.length, item: await podStats(deps, pods) };
}

export function listPodSandboxStats(deps: ServerDeps): UnaryHandler<ListPodSandboxStatsRequest__Output, ListPodSandboxStatsResponse> {
  return async (request) => {
    const { count, item } = await podsStats(deps, request.filter);
    return asResponse(await encodeInSteps('ListPodSandboxStats', 'stats', count, item));
  };
}
