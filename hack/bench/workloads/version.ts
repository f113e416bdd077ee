// Version: the cheapest RPC there is; measures the transport and the daemon's request path.
import { defineWorkload } from '../workload';

export default defineWorkload({
  name: 'version',
  description: 'Version: round trip through the gRPC server and the request path',
  rpcs: ['Version'],
  async run(client, timer, { call }) {
    await timer.time('Version', () => client.runtime.Version({ version: 'v1' }, call));
  },
});
