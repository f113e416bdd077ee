// Streaming exec: the round trip of `true` (Exec RPC, SPDY upgrade, streams, exit status) and the time
// to move $BENCH_EXEC_BYTES (default 100 MB) of output, both through the runtime's streaming server,
// with the SPDY client the tests use (client-go's protocol). One container runs in one pod throughout.
import { spdyExec } from '../../../test/support/streaming-client';
import { benchContainer, benchPod, removeBenchPod, type BenchPod } from './container';
import { defineWorkload } from '../workload';

const bytes = (): number => Number(process.env.BENCH_EXEC_BYTES ?? 100_000_000);

interface State extends BenchPod {
  containerId: string;
}

export default defineWorkload<State>({
  name: 'exec',
  description: 'Exec of `true` over SPDY (round trip); Exec streaming $BENCH_EXEC_BYTES (default 100 MB) of output',
  rpcs: ['Exec true (round trip)', 'Exec output (100 MB)'],
  requires: ['BENCH_CONTAINER_IMAGE'],
  async setup(client, call) {
    const pod = await benchPod(client, call, `bench-exec-${process.pid}-${Date.now() % 100000}`);
    const config = benchContainer('shell', ['sleep', '3600']);
    const { container_id } = await client.runtime.CreateContainer({ pod_sandbox_id: pod.podId, config, sandbox_config: pod.config }, { timeoutMs: 60_000 });
    await client.runtime.StartContainer({ container_id }, call);
    return { ...pod, containerId: container_id };
  },
  async run(client, timer, { state, call, iteration }) {
    const exec = async (cmd: string[], onStdout?: (c: Buffer) => void) => {
      const { url } = await client.runtime.Exec({ container_id: state.containerId, cmd, stdout: true, stderr: true }, call);
      return spdyExec(url, { stdout: true, stderr: true, onStdout });
    };
    await timer.time('Exec true (round trip)', () => exec(['true']));
    // The throughput run every 10th iteration: it takes far longer than the round trip.
    if (iteration % 10 === 0) {
      let got = 0;
      await timer.time('Exec output (100 MB)', () => exec(['head', '-c', String(bytes()), '/dev/zero'], (c) => (got += c.length)));
      // Reported, not fatal: a runtime that drops the end of the output still gets its time measured.
      if (got !== bytes()) process.stderr.write(`bench: exec output: ${got} bytes instead of ${bytes()}\n`);
    }
  },
  teardown: (client, { state }) => removeBenchPod(client, state),
});
