import type { RuntimeConfigRequest__Output } from '../../generated/runtime/v1/RuntimeConfigRequest';
import type { RuntimeConfigResponse } from '../../generated/runtime/v1/RuntimeConfigResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

const CGROUP_DRIVERS = { cgroupfs: 'CGROUPFS', systemd: 'SYSTEMD' } as const;

export function runtimeConfig(deps: ServerDeps): UnaryHandler<RuntimeConfigRequest__Output, RuntimeConfigResponse> {
  const driver = deps.config.runtime.cgroup_driver as keyof typeof CGROUP_DRIVERS;
  return async () => ({ linux: { cgroup_driver: CGROUP_DRIVERS[driver] } });
}
