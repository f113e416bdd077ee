import type { ListContainerStatsRequest__Output } from '../../generated/runtime/v1/ListContainerStatsRequest';
import type { ListContainerStatsResponse } from '../../generated/runtime/v1/ListContainerStatsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { containerStatsMessage } from './stats-message';

export function listContainerStats(deps: ServerDeps): UnaryHandler<ListContainerStatsRequest__Output, ListContainerStatsResponse> {
  return async (request) => {
    const f = request.filter;
    const records = await deps.containers.list({ id: f?.id || undefined, podId: f?.pod_sandbox_id || undefined, labels: f?.label_selector, state: 'running' });
    const { containers } = await deps.stats.sample(records, [], deps.config.root);
    return { stats: records.map((r, i) => containerStatsMessage(r, containers[i])) };
  };
}
