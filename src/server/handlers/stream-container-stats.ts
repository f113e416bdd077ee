import type { StreamContainerStatsRequest__Output } from '../../generated/runtime/v1/StreamContainerStatsRequest';
import type { StreamContainerStatsResponse } from '../../generated/runtime/v1/StreamContainerStatsResponse';
import type { StreamHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { containersStats } from './list-container-stats';
import { pages } from './pages';

/** ListContainerStats' items, sampled once and built a page at a time (pages.ts). */
export function streamContainerStats(deps: ServerDeps): StreamHandler<StreamContainerStatsRequest__Output, StreamContainerStatsResponse> {
  return async function* (request) {
    const { count, item } = await containersStats(deps, request.filter);
    for await (const page of pages(count, item)) yield { container_stats: page };
  };
}
