import type { ListPodSandboxRequest__Output } from '../../generated/runtime/v1/ListPodSandboxRequest';
import type { ListPodSandboxResponse } from '../../generated/runtime/v1/ListPodSandboxResponse';
import type { PodSandboxFilter__Output } from '../../generated/runtime/v1/PodSandboxFilter';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { sandboxListItem } from './sandbox-message';
import { whileSame } from '../../util/memo';
import type { SandboxRecord } from '../../pod/sandbox';

/** A CRI PodSandboxFilter as PodService.list takes it. */
export function sandboxFilter(f: PodSandboxFilter__Output | null | undefined) {
  const state = f?.state ? (f.state.state === 'SANDBOX_READY' ? ('ready' as const) : ('notready' as const)) : undefined;
  return { id: f?.id || undefined, state, labels: f?.label_selector };
}

export function listPodSandbox(deps: ServerDeps): UnaryHandler<ListPodSandboxRequest__Output, ListPodSandboxResponse> {
  // The unfiltered list (the kubelet's relist, every second) is built and encoded once per change.
  const all = whileSame((records: readonly SandboxRecord[]): ListPodSandboxResponse => ({ items: records.map(sandboxListItem) }));
  return async (request) => {
    const filter = sandboxFilter(request.filter);
    const records = deps.pods.list(filter);
    if (!filter.id && !filter.state && !Object.keys(filter.labels ?? {}).length) return all(records);
    return { items: records.map(sandboxListItem) };
  };
}
