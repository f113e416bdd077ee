import type { ListPodSandboxStatsRequest__Output } from '../../generated/runtime/v1/ListPodSandboxStatsRequest';
import type { ListPodSandboxStatsResponse } from '../../generated/runtime/v1/ListPodSandboxStatsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { asResponse, encodeInSteps } from '../encoded-responses';
import { podStats } from './pod-sandbox-stats';

export function listPodSandboxStats(deps: ServerDeps): UnaryHandler<ListPodSandboxStatsRequest__Output, ListPodSandboxStatsResponse> {
  return async (request) => {
    const f = request.filter;
    const pods = deps.pods.list({ id: f?.id || undefined, labels: f?.label_selector, state: 'ready' });
    const build = await podStats(deps, pods);
    return asResponse(await encodeInSteps('ListPodSandboxStats', 'stats', pods.length, build));
  };
}
