// GetContainerEvents (issue 15): the kubelet's evented PLEG stream. Every subscriber sees each pod
// sandbox's and container's CREATED, STARTED, STOPPED and DELETED in order, each with the pod's status
// and its containers' statuses as they are then; a container's exit arrives by itself (from its
// monitor's exit file), with no call asking for it; a client that goes away is dropped.
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEventResponse__Output } from '../../src/generated/runtime/v1/ContainerEventResponse';
import { podConfigOf, startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';
import { until } from '../support/until';

const tag = `${process.pid % 10000}`;

interface Subscriber {
  events: ContainerEventResponse__Output[];
  stream: grpc.ClientReadableStream<ContainerEventResponse__Output>;
  ended: Promise<void>;
  /** Resolves once berthd has subscribed it (the response headers came). */
  open: Promise<void>;
}

describe('GetContainerEvents', () => {
  let env: PodDaemon;

  beforeAll(async () => {
    env = await startPodDaemon('berth-events', { name: `events-${tag}`, bridge: `bevt${tag}`, subnet: `10.128.${process.pid % 250}` });
  });

  afterAll(async () => {
    await stopPodDaemon(env);
  });

  function subscribe(): Subscriber {
    const events: ContainerEventResponse__Output[] = [];
    const stream = env.berthd.client.rawRuntime.GetContainerEvents({});
    stream.on('data', (e: ContainerEventResponse__Output) => events.push(e));
    const ended = new Promise<void>((resolve) => {
      stream.on('error', () => resolve());
      stream.on('end', () => resolve());
    });
    const open = new Promise<void>((resolve) => stream.once('metadata', () => resolve()));
    return { events, stream, ended, open };
  }

  /** Events of one id, as "TYPE" strings. */
  const typesOf = (s: Subscriber, id: string) => s.events.filter((e) => e.container_id === id).map((e) => e.container_event_type.replace(/^CONTAINER_|_EVENT$/g, ''));

  it('tells every subscriber of a sandbox and a container from creation to deletion, with the statuses at each step', async () => {
    const a = subscribe();
    const b = subscribe();
    await Promise.all([a.open, b.open]);
    const rt = env.berthd.client.runtime;
    const config = podConfigOf(env, 'ev', tag);
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    const id = (
      await rt.CreateContainer({
        pod_sandbox_id: podId,
        sandbox_config: config,
        config: { metadata: { name: 'short', attempt: 0 }, image: { image: env.image }, command: ['sh', '-c', 'sleep 0.3; exit 3'], log_path: 'short.log' },
      })
    ).container_id;
    await rt.StartContainer({ container_id: id });
    // No call asks for the exit: it comes from the container's monitor by itself.
    const stopped = await until('the STOPPED event', () => a.events.find((e) => e.container_id === id && e.container_event_type === 'CONTAINER_STOPPED_EVENT'), 15_000);
    expect(stopped.pod_sandbox_status?.id).toBe(podId);
    expect(stopped.pod_sandbox_status?.state).toBe('SANDBOX_READY');
    expect(stopped.containers_statuses.map((s) => [s.id, s.state, s.exit_code])).toEqual([[id, 'CONTAINER_EXITED', 3]]);
    expect(BigInt(stopped.created_at)).toBeGreaterThan(0n);
    await rt.RemoveContainer({ container_id: id });
    await rt.StopPodSandbox({ pod_sandbox_id: podId });
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
    for (const s of [a, b]) {
      await until('the sandbox DELETED event', () => typesOf(s, podId).includes('DELETED'), 10_000);
      expect(typesOf(s, podId)).toEqual(['CREATED', 'STARTED', 'STOPPED', 'DELETED']);
      expect(typesOf(s, id)).toEqual(['CREATED', 'STARTED', 'STOPPED', 'DELETED']);
    }
    const created = a.events.find((e) => e.container_id === id && e.container_event_type === 'CONTAINER_CREATED_EVENT');
    expect(created?.containers_statuses.map((s) => [s.id, s.state])).toEqual([[id, 'CONTAINER_CREATED']]);
    const deleted = a.events.find((e) => e.container_id === id && e.container_event_type === 'CONTAINER_DELETED_EVENT');
    expect(deleted?.containers_statuses).toEqual([]);
    // The sandbox's own DELETED has no status left to carry.
    expect(a.events.find((e) => e.container_id === podId && e.container_event_type === 'CONTAINER_DELETED_EVENT')?.pod_sandbox_status).toBeNull();
    for (const s of [a, b]) s.stream.cancel();
    await Promise.all([a.ended, b.ended]);
  });

  it('keeps serving the others when a subscriber goes away, and PodSandboxStatus carries the containers and a timestamp', async () => {
    const gone = subscribe();
    const stays = subscribe();
    await Promise.all([gone.open, stays.open]);
    gone.stream.cancel();
    await gone.ended;
    const rt = env.berthd.client.runtime;
    const config = podConfigOf(env, 'ev2', tag);
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    const id = (
      await rt.CreateContainer({
        pod_sandbox_id: podId,
        sandbox_config: config,
        config: { metadata: { name: 'long', attempt: 0 }, image: { image: env.image }, command: ['sleep', '60'], log_path: 'long.log' },
      })
    ).container_id;
    await rt.StartContainer({ container_id: id });
    await until('the STARTED event', () => typesOf(stays, id).includes('STARTED'), 10_000);
    expect(gone.events.filter((e) => e.container_id === id)).toEqual([]);
    const before = BigInt(Date.now()) * 1_000_000n;
    const status = await rt.PodSandboxStatus({ pod_sandbox_id: podId });
    expect(status.containers_statuses.map((s) => [s.id, s.state])).toEqual([[id, 'CONTAINER_RUNNING']]);
    expect(BigInt(status.timestamp)).toBeGreaterThanOrEqual(before);
    await rt.StopPodSandbox({ pod_sandbox_id: podId });
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
    await until('the container DELETED event', () => typesOf(stays, id).includes('DELETED'), 10_000);
    expect(typesOf(stays, id)).toEqual(['CREATED', 'STARTED', 'STOPPED', 'DELETED']);
    stays.stream.cancel();
    await stays.ended;
  });
});
