// Container lifecycle in one pod: CreateContainer+StartContainer, ExecSync of `true`, and
// StopContainer+RemoveContainer, each timed. $BENCH_CONTAINER_IMAGE names a busybox-like image
// (hack/bench-images.ts pushes 127.0.0.1:5000/busybox:latest); the pod is made once per endpoint.
import type { CriClient, CallOptions } from '../../../src/client/cri-client';
import { defineWorkload } from '../workload';

const image = (): string => process.env.BENCH_CONTAINER_IMAGE ?? '';

export interface BenchPod {
  podId: string;
  config: object;
}

/** A pod for a benchmark's containers; the image is pulled first (untimed). */
export async function benchPod(client: CriClient, call: CallOptions, name: string): Promise<BenchPod> {
  await client.image.PullImage({ image: { image: image() } }, { timeoutMs: 300_000 });
  const config = {
    metadata: { name, namespace: 'bench', uid: `uid-${name}`, attempt: 0 },
    hostname: name.slice(0, 63),
    log_directory: `/tmp/berth-bench-logs/${name}`,
    linux: {},
  };
  const { pod_sandbox_id: podId } = await client.runtime.RunPodSandbox({ config }, { timeoutMs: 120_000 });
  void call;
  return { podId, config };
}

export async function removeBenchPod(client: CriClient, pod: BenchPod | undefined): Promise<void> {
  if (!pod) return;
  await client.runtime.StopPodSandbox({ pod_sandbox_id: pod.podId }, { timeoutMs: 300_000 });
  await client.runtime.RemovePodSandbox({ pod_sandbox_id: pod.podId }, { timeoutMs: 300_000 });
}

export function benchContainer(name: string, command: string[]): object {
  return { metadata: { name, attempt: 0 }, image: { image: image() }, command, log_path: `${name}.log`, linux: {} };
}

export default defineWorkload<BenchPod>({
  name: 'container',
  description: 'CreateContainer+StartContainer; ExecSync `true`; StopContainer+RemoveContainer (in one pod)',
  rpcs: ['CreateContainer+StartContainer', 'ExecSync', 'StopContainer+RemoveContainer'],
  requires: ['BENCH_CONTAINER_IMAGE'],
  setup: (client, call) => benchPod(client, call, `bench-ctr-${process.pid}-${Date.now() % 100000}`),
  async run(client, timer, { state, call, iteration }) {
    const config = benchContainer(`c${iteration}`, ['sleep', '3600']);
    const id = await timer.time('CreateContainer+StartContainer', async () => {
      const { container_id } = await client.runtime.CreateContainer({ pod_sandbox_id: state.podId, config, sandbox_config: state.config }, { timeoutMs: 60_000 });
      await client.runtime.StartContainer({ container_id }, call);
      return container_id;
    });
    await timer.time('ExecSync', () => client.runtime.ExecSync({ container_id: id, cmd: ['true'], timeout: 10 }, call));
    await timer.time('StopContainer+RemoveContainer', async () => {
      await client.runtime.StopContainer({ container_id: id, timeout: 0 }, { timeoutMs: 60_000 });
      await client.runtime.RemoveContainer({ container_id: id }, call);
    });
  },
  teardown: (client, { state }) => removeBenchPod(client, state),
});
