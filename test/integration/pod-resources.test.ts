// The pod-level resources (issue 15): RunPodSandbox's overhead and resources and UpdatePodSandboxResources
// are checked like a container's and kept as the pod's configuration (the kubelet sets the pod cgroup's
// limits itself, before it calls UpdatePodSandboxResources); PodSandboxStatus' verbose info shows them.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { podConfigOf, startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';

const tag = `${process.pid % 10000}`;

describe('pod-level resources', () => {
  let env: PodDaemon;

  beforeAll(async () => {
    env = await startPodDaemon('berth-podres', { name: `pr-${tag}`, bridge: `bprs${tag}`, subnet: `10.130.${process.pid % 250}` });
  });

  afterAll(async () => {
    await stopPodDaemon(env);
  });

  it('keeps RunPodSandbox\'s overhead and resources, updates them, and refuses bad ones', async () => {
    const rt = env.berthd.client.runtime;
    const config: PodSandboxConfig = {
      ...podConfigOf(env, 'res', tag),
      linux: { overhead: { cpu_shares: '10', memory_limit_in_bytes: '1048576' }, resources: { cpu_shares: '512', cpu_quota: '50000', cpu_period: '100000', memory_limit_in_bytes: '67108864' } },
    };
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    const kept = async () => (JSON.parse((await rt.PodSandboxStatus({ pod_sandbox_id: podId, verbose: true })).info.info) as { spec: { podResources: unknown } }).spec.podResources;
    expect(await kept()).toEqual({
      overhead: { cpuShares: 10, memoryLimit: 1048576 },
      resources: { cpuShares: 512, cpuQuota: 50000, cpuPeriod: 100000, memoryLimit: 67108864 },
    });
    await rt.UpdatePodSandboxResources({ pod_sandbox_id: podId, resources: { cpu_shares: '1024', memory_limit_in_bytes: '134217728' } });
    expect(await kept()).toEqual({ resources: { cpuShares: 1024, memoryLimit: 134217728 } });
    await expect(rt.UpdatePodSandboxResources({ pod_sandbox_id: podId, resources: { memory_limit_in_bytes: '-5' } })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(rt.UpdatePodSandboxResources({ pod_sandbox_id: 'f'.repeat(64), resources: { cpu_shares: '2' } })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await kept()).toEqual({ resources: { cpuShares: 1024, memoryLimit: 134217728 } });
    await rt.StopPodSandbox({ pod_sandbox_id: podId });
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
  });
});
