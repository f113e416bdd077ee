// A cold pull: the image is removed (untimed) before every timed PullImage, so every layer is
// downloaded and unpacked again. $BENCH_PULL_IMAGE names the image (hack/bench-images.ts pushes one).
import { defineWorkload } from '../workload';

const image = (): string => process.env.BENCH_PULL_IMAGE ?? '';
const PULL_TIMEOUT_MS = 20 * 60 * 1000;

export default defineWorkload({
  name: 'pull',
  description: 'PullImage of $BENCH_PULL_IMAGE, cold (removed first, untimed)',
  rpcs: ['PullImage'],
  requires: ['BENCH_PULL_IMAGE'],
  async run(client, timer, { call }) {
    await client.image.RemoveImage({ image: { image: image() } }, call).catch(() => undefined);
    await timer.time('PullImage', () => client.image.PullImage({ image: { image: image() } }, { timeoutMs: PULL_TIMEOUT_MS }));
  },
  async teardown(client, { call }) {
    await client.image.RemoveImage({ image: { image: image() } }, call).catch(() => undefined);
  },
});
