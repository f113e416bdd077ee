// Pod sandbox lifecycle: RunPodSandbox, then StopPodSandbox + RemovePodSandbox, each timed. The
// runtime needs a working CNI network (berth: --cni-conf-dir with cni/10-berth.conflist; containerd
// also needs its pause image, pushed by hack/bench-images.ts).
import { defineWorkload } from '../workload';

export default defineWorkload({
  name: 'pod',
  description: 'RunPodSandbox; StopPodSandbox+RemovePodSandbox (bridge CNI)',
  rpcs: ['RunPodSandbox', 'StopPodSandbox+RemovePodSandbox'],
  requires: ['BENCH_PODS'],
  async run(client, timer, { call, iteration, runId }) {
    const name = `bench-${runId}-${iteration}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
    const config = {
      metadata: { name, namespace: 'bench', uid: `uid-${name}`, attempt: 0 },
      hostname: name.slice(0, 63),
      log_directory: '/tmp',
      linux: {},
    };
    const { pod_sandbox_id: id } = await timer.time('RunPodSandbox', () => client.runtime.RunPodSandbox({ config }, { timeoutMs: 120_000 }));
    await timer.time('StopPodSandbox+RemovePodSandbox', async () => {
      await client.runtime.StopPodSandbox({ pod_sandbox_id: id }, call);
      await client.runtime.RemovePodSandbox({ pod_sandbox_id: id }, call);
    });
  },
});
