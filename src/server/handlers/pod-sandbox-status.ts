import type { PodSandboxStatusRequest__Output } from '../../generated/runtime/v1/PodSandboxStatusRequest';
import type { PodSandboxStatusResponse } from '../../generated/runtime/v1/PodSandboxStatusResponse';
import { InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { sandboxStatus } from './sandbox-message';
import { containerStatusMessage } from './container-message';
import { nowNanos } from '../../container/container';

export function podSandboxStatus(deps: ServerDeps): UnaryHandler<PodSandboxStatusRequest__Output, PodSandboxStatusResponse> {
  return async (request) => {
    if (!request.pod_sandbox_id) throw new InvalidArgumentError('PodSandboxStatus: pod_sandbox_id is empty');
    const record = deps.pods.status(request.pod_sandbox_id);
    const info: Record<string, string> = {};
    if (request.verbose) {
      info.info = JSON.stringify({
        pins: record.pins,
        netns: record.pins.net ?? '',
        cgroup: record.cgroup,
        initPid: record.init?.pid ?? 0,
        network: record.network,
        cniResult: record.network ? await deps.network.cachedResult(record.network.name, record.id) : null,
        ips: record.ips,
        stateDir: record.stateDir,
        spec: record.spec,
      });
    }
    // The statuses of the pod's containers and when they were taken, as the kubelet's evented PLEG reads them.
    const containers = await deps.containers.list({ podId: record.id });
    return { status: sandboxStatus(record), info, containers_statuses: containers.map(containerStatusMessage), timestamp: nowNanos() };
  };
}
