import type { ListContainerStatsRequest__Output } from '../../generated/runtime/v1/ListContainerStatsRequest';
import type { ListContainerStatsResponse } from '../../generated/runtime/v1/ListContainerStatsResponse';
import type { ContainerStats } from '../../generated/runtime/v1/ContainerStats';
import type { ContainerStatsFilter__Output } from '../../generated/runtime/v1/ContainerStatsFilter';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { asResponse, encodeInSteps } from '../encoded-responses';
import { containerStatsMessage } from './stats-message';

/** The stats of the running containers a filter selects: how many, and item i built on demand. */
export async function containersStats(deps: ServerDeps, f: ContainerStatsFilter__Output | null | undefined): Promise<{ count: number; item: (i: number) => ContainerStats }> {
  const records = await deps.containers.list({ id: f?.id || undefined, podId: f?.pod_sandbox_id || undefined, labels: f?.label_selector, state: 'running' });
  const batch = await deps.stats.sample(records, [], deps.config.root);
  return { count: records.length, item: (i) => containerStatsMessage(records[i], batch.container(i)) };
}

export function listContainerStats(deps: ServerDeps): UnaryHandler<ListContainerStatsRequest__Output, ListContainerStatsResponse> {
  return async (request) => {
    const { count, item } = await containersStats(deps, request.filter);
    return asResponse(await encodeInSteps('ListContainerStats', 'stats', count, item));
  };
}
