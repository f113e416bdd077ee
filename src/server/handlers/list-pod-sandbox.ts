import type { ListPodSandboxRequest__Output } from '../../generated/runtime/v1/ListPodSandboxRequest';
import type { ListPodSandboxResponse } from '../../generated/runtime/v1/ListPodSandboxResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { sandboxListItem } from './sandbox-message';
import { whileSame } from '../../util/memo';
import type { SandboxRecord } from '../../pod/sandbox';

export function listPodSandbox(deps: ServerDeps): UnaryHandler<ListPodSandboxRequest__Output, ListPodSandboxResponse> {
  // The unfiltered list (the kubelet's relist, every second) is built and encoded once per change.
  const all = whileSame((records: readonly SandboxRecord[]): ListPodSandboxResponse => ({ items: records.map(sandboxListItem) }));
  return async (request) => {
    const f = request.filter;
    const state = f?.state ? (f.state.state === 'SANDBOX_READY' ? ('ready' as const) : ('notready' as const)) : undefined;
    const filter = { id: f?.id || undefined, state, labels: f?.label_selector };
    const records = deps.pods.list(filter);
    if (!filter.id && !state && !Object.keys(filter.labels ?? {}).length) return all(records);
    return { items: records.map(sandboxListItem) };
  };
}
