// ImageFsInfo: the image filesystem's usage, which kubelet reads for eviction and stats.
import { defineWorkload } from '../workload';

export default defineWorkload({
  name: 'imagefs',
  description: 'ImageFsInfo: usage of the image filesystem',
  rpcs: ['ImageFsInfo'],
  async run(client, timer, { call }) {
    await timer.time('ImageFsInfo', () => client.image.ImageFsInfo({}, call));
  },
});
