// Cold pulls of many-layer images, where what a pull costs per layer (a helper started, a connection,
// a sync, a commit) outweighs the bytes: 30 layers of 1 MiB, and 30 layers of one 4 KiB file. Each is
// removed (untimed) before it is pulled. $BENCH_PULL_MANY_REGISTRY is the registry that
// `hack/bench-images.ts --many` pushed them to (e.g. 127.0.0.1:5000).
import { defineWorkload } from '../workload';

const PULL_TIMEOUT_MS = 20 * 60 * 1000;
const IMAGES = [
  ['PullImage 30x1MiB', 'bench/many-1m:latest'],
  ['PullImage 30x4KiB', 'bench/many-small:latest'],
] as const;
const ref = (repo: string): string => `${process.env.BENCH_PULL_MANY_REGISTRY ?? ''}/${repo}`;

export default defineWorkload({
  name: 'pull-many',
  description: 'PullImage of 30-layer images (1 MiB and 4 KiB layers) from $BENCH_PULL_MANY_REGISTRY, cold',
  rpcs: IMAGES.map(([rpc]) => rpc),
  requires: ['BENCH_PULL_MANY_REGISTRY'],
  async run(client, timer, { call }) {
    for (const [rpc, repo] of IMAGES) {
      await client.image.RemoveImage({ image: { image: ref(repo) } }, call).catch(() => undefined);
      await timer.time(rpc, () => client.image.PullImage({ image: { image: ref(repo) } }, { timeoutMs: PULL_TIMEOUT_MS }));
    }
  },
  async teardown(client, { call }) {
    for (const [, repo] of IMAGES) await client.image.RemoveImage({ image: { image: ref(repo) } }, call).catch(() => undefined);
  },
});
