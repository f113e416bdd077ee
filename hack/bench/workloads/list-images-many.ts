// ListImages with many images in the store: setup pulls $BENCH_MANY_IMAGES tiny images named
// $BENCH_MANY_PREFIX:0 … :N-1 (hack/bench-images.ts pushes them), the run lists them.
import { defineWorkload } from '../workload';

const count = (): number => Number(process.env.BENCH_MANY_IMAGES ?? '1000');
const names = (): string[] => Array.from({ length: count() }, (_x, i) => `${process.env.BENCH_MANY_PREFIX}:${i}`);

export default defineWorkload<{ expected: number }>({
  name: 'list-images-many',
  description: 'ListImages with $BENCH_MANY_IMAGES (default 1000) images in the store',
  rpcs: ['ListImages'],
  requires: ['BENCH_MANY_PREFIX'],
  async setup(client, call) {
    const all = names();
    for (let i = 0; i < all.length; i += 8) {
      await Promise.all(all.slice(i, i + 8).map((image) => client.image.PullImage({ image: { image } }, { timeoutMs: 120_000 })));
    }
    return { expected: all.length };
  },
  async run(client, timer, { call, state }) {
    const res = await timer.time('ListImages', () => client.image.ListImages({}, call));
    if (res.images.length < state.expected) throw new Error(`ListImages returned ${res.images.length} images, expected ${state.expected}`);
  },
  async teardown(client, { call }) {
    for (const image of names()) await client.image.RemoveImage({ image: { image } }, call).catch(() => undefined);
  },
});
