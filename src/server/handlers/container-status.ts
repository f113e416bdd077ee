import type { ContainerStatusRequest__Output } from '../../generated/runtime/v1/ContainerStatusRequest';
import type { ContainerStatusResponse } from '../../generated/runtime/v1/ContainerStatusResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import fs from 'node:fs/promises';
import path from 'node:path';
import { containerStatusMessage } from './container-message';

export function containerStatus(deps: ServerDeps): UnaryHandler<ContainerStatusRequest__Output, ContainerStatusResponse> {
  return async (request) => {
    const record = await deps.containers.status(request.container_id);
    const info: Record<string, string> = {};
    if (request.verbose) {
      const spec = await fs.readFile(path.join(record.stateDir, 'bundle', 'config.json'), 'utf8').catch(() => 'null');
      info.info = JSON.stringify({
        sandboxID: record.podId,
        pid: record.state === 'running' ? record.pid : 0,
        monitorPid: record.monitor?.pid ?? 0,
        runtimeType: record.handler,
        cgroup: record.cgroup,
        stateDir: record.stateDir,
        runtimeSpec: JSON.parse(spec) as unknown,
      });
    }
    return { status: containerStatusMessage(record), info };
  };
}
