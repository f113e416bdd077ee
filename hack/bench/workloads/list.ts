// The list calls kubelet's PLEG and image manager make all the time. Each is measured on its own: one that
// an endpoint does not implement is reported as such, and the others are still measured.
import { defineWorkload, skipUnimplemented } from '../workload';

export default defineWorkload({
  name: 'list',
  description: 'ListPodSandbox, ListContainers, ListImages with no filter',
  rpcs: ['ListPodSandbox', 'ListContainers', 'ListImages'],
  async run(client, timer, { call }) {
    await timer.time('ListPodSandbox', () => client.runtime.ListPodSandbox({}, call)).catch(skipUnimplemented);
    await timer.time('ListContainers', () => client.runtime.ListContainers({}, call)).catch(skipUnimplemented);
    await timer.time('ListImages', () => client.image.ListImages({}, call)).catch(skipUnimplemented);
  },
});
