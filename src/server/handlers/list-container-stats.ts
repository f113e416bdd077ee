import type { ListContainerStatsRequest__Output } from '../../generated/runtime/v1/ListContainerStatsRequest';
import type { ListContainerStatsResponse } from '../../generated/runtime/v1/ListContainerStatsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { asResponse, encodeInSteps } from '../encoded-responses';
import { containerStatsMessage } from './stats-message';

export function listContainerStats(deps: ServerDeps): UnaryHandler<ListContainerStatsRequest__Output, ListContainerStatsResponse> {
  return async (request) => {
    const f = request.filter;
    const records = await deps.containers.list({ id: f?.id || undefined, podId: f?.pod_sandbox_id || undefined, labels: f?.label_selector, state: 'running' });
    const batch = await deps.stats.sample(records, [], deps.config.root);
    return asResponse(await encodeInSteps('ListContainerStats', 'stats', records.length, (i) => containerStatsMessage(records[i], batch.container(i))));
  };
}
