import type { ListPodSandboxRequest__Output } from '../../generated/runtime/v1/ListPodSandboxRequest';
import type { ListPodSandboxResponse } from '../../generated/runtime/v1/ListPodSandboxResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { sandboxListItem } from './sandbox-message';

export function listPodSandbox(deps: ServerDeps): UnaryHandler<ListPodSandboxRequest__Output, ListPodSandboxResponse> {
  return async (request) => {
    const f = request.filter;
    const state = f?.state ? (f.state.state === 'SANDBOX_READY' ? 'ready' : 'notready') : undefined;
    const records = deps.pods.list({ id: f?.id || undefined, state, labels: f?.label_selector });
    return { items: records.map(sandboxListItem) };
  };
}
