import type { ContainerStatsRequest__Output } from '../../generated/runtime/v1/ContainerStatsRequest';
import type { ContainerStatsResponse } from '../../generated/runtime/v1/ContainerStatsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { containerStatsMessage } from './stats-message';

export function containerStats(deps: ServerDeps): UnaryHandler<ContainerStatsRequest__Output, ContainerStatsResponse> {
  return async (request) => {
    const record = await deps.containers.status(request.container_id);
    const batch = await deps.stats.sample([record], [], deps.config.root);
    return { stats: containerStatsMessage(record, batch.container(0)) };
  };
}
