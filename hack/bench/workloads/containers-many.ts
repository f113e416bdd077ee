// Many running containers at once: setup starts $BENCH_MANY_CONTAINERS (default 200) `sleep`
// containers in one pod (untimed); the run times ListContainers and ContainerStatus among them. The
// memory figures then show the daemon's RSS and each per-container process's RSS with all of them up.
import { benchContainer, benchPod, removeBenchPod, type BenchPod } from './container';
import { defineWorkload } from '../workload';

const count = (): number => Number(process.env.BENCH_MANY_CONTAINERS ?? '200');

interface State extends BenchPod {
  ids: string[];
}

export default defineWorkload<State>({
  name: 'containers-many',
  description: 'ListContainers and ContainerStatus with $BENCH_MANY_CONTAINERS (default 200) running containers',
  rpcs: ['ListContainers', 'ContainerStatus'],
  requires: ['BENCH_CONTAINER_IMAGE', 'BENCH_MANY_CONTAINERS'],
  async setup(client, call) {
    const pod = await benchPod(client, call, `bench-many-${process.pid}-${Date.now() % 100000}`);
    const ids: string[] = [];
    for (let i = 0; i < count(); i++) {
      const config = benchContainer(`m${i}`, ['sleep', '3600']);
      const { container_id } = await client.runtime.CreateContainer({ pod_sandbox_id: pod.podId, config, sandbox_config: pod.config }, { timeoutMs: 60_000 });
      await client.runtime.StartContainer({ container_id }, { timeoutMs: 60_000 });
      ids.push(container_id);
    }
    return { ...pod, ids };
  },
  async run(client, timer, { state, call, iteration }) {
    await timer.time('ListContainers', () => client.runtime.ListContainers({}, call));
    const id = state.ids[iteration % state.ids.length];
    await timer.time('ContainerStatus', () => client.runtime.ContainerStatus({ container_id: id }, call));
  },
  teardown: (client, { state }) => removeBenchPod(client, state),
});
