import type { StreamContainersRequest__Output } from '../../generated/runtime/v1/StreamContainersRequest';
import type { StreamContainersResponse } from '../../generated/runtime/v1/StreamContainersResponse';
import type { StreamHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { containerListItem } from './container-message';
import { containerFilter } from './list-containers';
import { pagesOf } from './pages';

/** ListContainers' items, a page at a time (pages.ts). */
export function streamContainers(deps: ServerDeps): StreamHandler<StreamContainersRequest__Output, StreamContainersResponse> {
  return async function* (request) {
    for await (const page of pagesOf(await deps.containers.list(containerFilter(request.filter)))) yield { containers: page.map(containerListItem) };
  };
}
