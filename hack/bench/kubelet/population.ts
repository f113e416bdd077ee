// The pods a kubelet would run: N pods of M `sleep` containers, labelled and annotated as the kubelet labels
// them (io.kubernetes.pod.uid and friends), made and removed through the CRI with a bounded number of calls
// in flight (the kubelet's pod workers run in parallel too).
import type { CriClient } from '../../../src/client/cri-client';

export interface PopulationSpec {
  pods: number;
  containersPerPod: number;
  image: string;
  /** Distinguishes this run's pods from anything else on the runtime. */
  runId: string;
  concurrency: number;
}

export interface BenchPodRef {
  uid: string;
  podId: string;
  containerIds: string[];
}

const LONG = { timeoutMs: 300_000 };

export const POD_UID_LABEL = 'io.kubernetes.pod.uid';

function podConfig(spec: PopulationSpec, i: number): object {
  const name = `kl-${i}`;
  const uid = `${spec.runId}-${i}`;
  return {
    metadata: { name, namespace: 'bench', uid, attempt: 0 },
    hostname: name,
    log_directory: `/tmp/berth-bench-logs/${uid}`,
    labels: { [POD_UID_LABEL]: uid, 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': 'bench' },
    annotations: { 'kubernetes.io/config.source': 'api' },
    // The kubelet puts every pod under its QoS class's cgroup (cgroupfs driver form).
    linux: { cgroup_parent: `/kubepods/besteffort/pod${uid}`, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

function containerConfig(spec: PopulationSpec, uid: string, j: number): object {
  return {
    metadata: { name: `c${j}`, attempt: 0 },
    image: { image: spec.image },
    command: ['sleep', '36000'],
    log_path: `c${j}/0.log`,
    labels: { [POD_UID_LABEL]: uid, 'io.kubernetes.container.name': `c${j}`, 'io.kubernetes.pod.namespace': 'bench' },
    linux: {},
  };
}

/** Runs fn over 0..n-1 with at most `limit` calls in flight. */
export async function inParallel(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

/** Makes the pods, adding each to `into` as soon as it exists (so that a failure half-way leaves `into`
 * naming everything there is to remove). */
export async function createPopulation(client: CriClient, spec: PopulationSpec, into: BenchPodRef[]): Promise<void> {
  await client.image.PullImage({ image: { image: spec.image } }, LONG);
  await inParallel(spec.pods, spec.concurrency, async (i) => {
    const config = podConfig(spec, i);
    const uid = `${spec.runId}-${i}`;
    const { pod_sandbox_id: podId } = await client.runtime.RunPodSandbox({ config }, LONG);
    const containerIds: string[] = [];
    into.push({ uid, podId, containerIds });
    for (let j = 0; j < spec.containersPerPod; j++) {
      const { container_id } = await client.runtime.CreateContainer(
        { pod_sandbox_id: podId, config: containerConfig(spec, uid, j), sandbox_config: config },
        LONG,
      );
      await client.runtime.StartContainer({ container_id }, LONG);
      containerIds.push(container_id);
    }
  });
}

/** Stops and removes the pods (and so their containers), as the kubelet does when pods are deleted. */
export async function removePopulation(client: CriClient, pods: readonly BenchPodRef[], concurrency: number): Promise<void> {
  await inParallel(pods.length, concurrency, async (i) => {
    const p = pods[i];
    if (!p) return;
    for (const id of p.containerIds) await client.runtime.StopContainer({ container_id: id, timeout: 0 }, LONG);
    await client.runtime.StopPodSandbox({ pod_sandbox_id: p.podId }, LONG);
    await client.runtime.RemovePodSandbox({ pod_sandbox_id: p.podId }, LONG);
  });
}
