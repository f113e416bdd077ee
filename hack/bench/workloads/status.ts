// Status: what kubelet polls every few seconds (runtime and network conditions).
import { defineWorkload } from '../workload';

export default defineWorkload({
  name: 'status',
  description: 'Status (verbose off): runtime and network readiness, as kubelet polls it',
  rpcs: ['Status'],
  async run(client, timer, { call }) {
    await timer.time('Status', () => client.runtime.Status({ verbose: false }, call));
  },
});
