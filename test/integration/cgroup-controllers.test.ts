// A container that needs a cgroup controller the host does not offer is refused before anything is made
// (FAILED_PRECONDITION naming the controller), never run with the limit silently dropped.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableControllers } from '../../src/cgroups/layout';
import { startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';

const tag = `${process.pid % 10000}`;
const SUBNET = `10.127.${process.pid % 250}`;

describe('cgroup controllers a container needs', () => {
  let env: PodDaemon | undefined;
  beforeAll(async () => {
    env = await startPodDaemon('berth-cgctl', { name: `cgc${tag}`, bridge: `bcgc${tag}`, subnet: SUBNET, portmap: false });
  });
  afterAll(async () => {
    await stopPodDaemon(env);
  });

  it('refuses one the host lacks with FAILED_PRECONDITION naming it, and leaves nothing behind', async () => {
    const rt = env!.berthd.client.runtime;
    // This host's cgroup v1 hierarchies have no hugetlb (it sits on the unified one, which berth does not use
    // beside v1); on a pure v2 node the missing one would be another: pick one the host really lacks.
    const lacking = ['hugetlb', 'rdma', 'misc'].find((c) => !availableControllers().has(c));
    if (!lacking) throw new Error(`this host offers hugetlb, rdma and misc: the test needs a controller it lacks`);
    const resources = lacking === 'hugetlb' ? { hugepage_limits: [{ page_size: '2MB', limit: String(2 * 1024 * 1024) }] } : { unified: { [`${lacking}.max`]: 'max' } };
    const pod = { metadata: { name: 'cgctl', namespace: 'default', uid: 'uid-cgctl', attempt: 0 }, log_directory: path.join(env!.dir, 'logs') };
    const podId = (await rt.RunPodSandbox({ config: pod })).pod_sandbox_id;
    const config = { metadata: { name: 'needs', attempt: 0 }, image: { image: env!.image }, command: ['true'], linux: { resources } };
    const err = await rt.CreateContainer({ pod_sandbox_id: podId, config, sandbox_config: pod }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err?.details).toContain(`"${lacking}"`);
    expect((await rt.ListContainers({})).containers).toEqual([]);
    // The name is free again: the same container without the limit is created.
    const ok = await rt.CreateContainer({ pod_sandbox_id: podId, config: { ...config, linux: {} }, sandbox_config: pod });
    expect(ok.container_id).toMatch(/^[0-9a-f]{64}$/);
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
  });
});
