// The streaming forms of the List calls (issue 15; the kubelet's CRIListStreaming): each gives exactly
// the items of its List call, filters included, in non-empty pages, and an empty list is a stream that
// ends with no message.
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';

const tag = `${process.pid % 10000}`;

/** Every message of a server stream, once it ends OK. */
function messages<T>(stream: grpc.ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    stream.on('data', (m: T) => out.push(m));
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
  });
}

describe('List streams', () => {
  let env: PodDaemon;
  const pods: string[] = [];
  const containers: string[] = [];

  beforeAll(async () => {
    env = await startPodDaemon('berth-liststream', { name: `ls-${tag}`, bridge: `blst${tag}`, subnet: `10.129.${process.pid % 250}` });
    const rt = env.berthd.client.runtime;
    for (const name of ['one', 'two']) {
      const config: PodSandboxConfig = { metadata: { name, namespace: 'default', uid: `u-${name}-${tag}`, attempt: 0 }, hostname: name, log_directory: path.join(env.dir, 'logs', name), labels: { pod: name } };
      const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
      const id = (
        await rt.CreateContainer({ pod_sandbox_id: podId, sandbox_config: config, config: { metadata: { name: 'c', attempt: 0 }, image: { image: env.image }, command: ['sleep', '60'], labels: { ctr: name } } })
      ).container_id;
      await rt.StartContainer({ container_id: id });
      pods.push(podId);
      containers.push(id);
    }
  });

  afterAll(async () => {
    await stopPodDaemon(env);
  });

  it('StreamPodSandboxes and StreamContainers give the List calls\' items, with and without filters', async () => {
    const raw = env.berthd.client.rawRuntime;
    const rt = env.berthd.client.runtime;
    const sandboxPages = await messages(raw.StreamPodSandboxes({}));
    expect(sandboxPages.every((p) => p.pod_sandboxes.length > 0)).toBe(true);
    const listed = (await rt.ListPodSandbox({})).items.map((p) => p.id).sort();
    expect(sandboxPages.flatMap((p) => p.pod_sandboxes.map((s) => s.id)).sort()).toEqual(listed);
    expect(listed).toEqual([...pods].sort());
    const one = await messages(raw.StreamPodSandboxes({ filter: { label_selector: { pod: 'one' } } }));
    expect(one.flatMap((p) => p.pod_sandboxes.map((s) => s.id))).toEqual([pods[0]]);
    expect(await messages(raw.StreamPodSandboxes({ filter: { id: 'f'.repeat(64) } }))).toEqual([]);

    const containerPages = await messages(raw.StreamContainers({}));
    expect(containerPages.flatMap((p) => p.containers.map((c) => c.id)).sort()).toEqual([...containers].sort());
    const two = await messages(raw.StreamContainers({ filter: { pod_sandbox_id: pods[1] } }));
    expect(two.flatMap((p) => p.containers.map((c) => [c.id, c.state]))).toEqual([[containers[1], 'CONTAINER_RUNNING']]);
  });

  it('StreamContainerStats, StreamPodSandboxStats and StreamImages give the List calls\' items', async () => {
    const raw = env.berthd.client.rawRuntime;
    const stats = await messages(raw.StreamContainerStats({}));
    expect(stats.flatMap((p) => p.container_stats.map((s) => s.attributes?.id)).sort()).toEqual([...containers].sort());
    expect(stats.flatMap((p) => p.container_stats).every((s) => BigInt(s.memory?.working_set_bytes?.value ?? '0') > 0n)).toBe(true);
    const podStats = await messages(raw.StreamPodSandboxStats({ filter: { id: pods[0] } }));
    expect(podStats.flatMap((p) => p.pod_sandbox_stats.map((s) => s.attributes?.id))).toEqual([pods[0]]);
    const images = await messages(env.berthd.client.rawImage.StreamImages({}));
    const listed = (await env.berthd.client.image.ListImages({})).images.map((i) => i.id).sort();
    expect(images.flatMap((p) => p.images.map((i) => i.id)).sort()).toEqual(listed);
    expect(listed.length).toBeGreaterThanOrEqual(1);
    const named = await messages(env.berthd.client.rawImage.StreamImages({ filter: { image: { image: env.image } } }));
    expect(named.flatMap((p) => p.images.map((i) => i.repo_tags))).toEqual([[env.image]]);
  });

  it('ListMetricDescriptors declares cAdvisor-named metrics, and ListPodSandboxMetrics and its stream report them for every ready pod', async () => {
    const rt = env.berthd.client.runtime;
    const { descriptors } = await rt.ListMetricDescriptors({});
    const keys = new Map(descriptors.map((d) => [d.name, d.label_keys]));
    expect([...keys.keys()]).toEqual(expect.arrayContaining(['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes', 'container_network_receive_bytes_total', 'container_processes']));
    expect(keys.get('container_memory_working_set_bytes')).toEqual(['pod', 'namespace', 'container', 'id', 'image']);
    const { pod_metrics } = await rt.ListPodSandboxMetrics({});
    expect(pod_metrics.map((p) => p.pod_sandbox_id).sort()).toEqual([...pods].sort());
    for (const [k, podId] of pods.entries()) {
      const p = pod_metrics.find((m) => m.pod_sandbox_id === podId)!;
      // Every metric is declared, with as many label values as its descriptor has keys.
      for (const m of [...p.metrics, ...p.container_metrics.flatMap((c) => c.metrics)]) {
        expect(keys.get(m.name)?.length, m.name).toBe(m.label_values.length);
        expect(BigInt(m.timestamp)).toBeGreaterThan(0n);
      }
      const rx = p.metrics.find((m) => m.name === 'container_network_receive_bytes_total' && m.label_values[5] === 'eth0');
      expect(rx?.label_values.slice(0, 4)).toEqual([k === 0 ? 'one' : 'two', 'default', '', podId]);
      expect(Number(p.metrics.find((m) => m.name === 'container_processes')?.value?.value)).toBeGreaterThan(0);
      expect(p.container_metrics.map((c) => c.container_id)).toEqual([containers[k]]);
      const ws = p.container_metrics[0].metrics.find((m) => m.name === 'container_memory_working_set_bytes');
      expect(ws?.label_values).toEqual([k === 0 ? 'one' : 'two', 'default', 'c', containers[k], env.image]);
      expect(ws?.metric_type).toBe('GAUGE');
      expect(Number(ws?.value?.value)).toBeGreaterThan(0);
      expect(p.container_metrics[0].metrics.find((m) => m.name === 'container_cpu_usage_seconds_total')?.metric_type).toBe('COUNTER');
    }
    const streamed = await messages(env.berthd.client.rawRuntime.StreamPodSandboxMetrics({}));
    expect(streamed.flatMap((page) => page.pod_sandbox_metrics.map((m) => m.pod_sandbox_id)).sort()).toEqual([...pods].sort());
  });
});
