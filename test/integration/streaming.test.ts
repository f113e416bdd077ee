// Exec, Attach and PortForward end to end: a real berthd, its streaming server, berth-monitor and
// berth-runtime, driven by a client speaking SPDY and WebSocket as client-go does.
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { startBerthd, type BerthdHandle } from '../support/berthd';
import { startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';
import { freePort } from '../support/ports';
import { pidsWithCmdline } from '../support/procs';
import { allZero, exitCodeOf, HttpStatusError, spdyExec, SpdyPortForwarder, wsExec } from '../support/streaming-client';
import { until } from '../support/until';

const tag = `${process.pid % 10000}`;
const bridge = `bstr${tag}`;
const SUBNET = `10.126.${process.pid % 250}`;

describe('streaming through berthd', () => {
  let env: PodDaemon | undefined;
  let berthd: BerthdHandle;
  let dir: string;
  let image: string;
  let pod: { id: string; config: PodSandboxConfig };
  let shell: string;

  const rt = () => berthd.client.runtime;

  const ctr = (name: string, script: string, extra: Partial<ContainerConfig> = {}): ContainerConfig => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['sh', '-c', script],
    log_path: `${name}.log`,
    ...extra,
  });

  async function runIn(p: { id: string; config: PodSandboxConfig }, config: ContainerConfig): Promise<string> {
    const { container_id } = await rt().CreateContainer({ pod_sandbox_id: p.id, config, sandbox_config: p.config });
    await rt().StartContainer({ container_id });
    return container_id;
  }

  async function runPod(name: string, extra: Partial<PodSandboxConfig> = {}) {
    const config: PodSandboxConfig = { metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 }, hostname: name, log_directory: path.join(dir, 'logs', name), ...extra };
    return { id: (await rt().RunPodSandbox({ config })).pod_sandbox_id, config };
  }

  const execUrl = async (cmd: string[], opts: { tty?: boolean; stdin?: boolean; stderr?: boolean } = {}) =>
    (await rt().Exec({ container_id: shell, cmd, tty: opts.tty ?? false, stdin: opts.stdin ?? false, stdout: true, stderr: opts.stderr ?? !opts.tty })).url;

  beforeAll(async () => {
    env = await startPodDaemon('berth-stream', { name: `str${tag}`, bridge, subnet: SUBNET, portmap: false });
    ({ dir, image, berthd } = env);
    pod = await runPod('stream');
    shell = await runIn(pod, ctr('shell', 'sleep 3600'));
  }, 60_000);

  afterAll(() => stopPodDaemon(env, berthd));

  it('execs over SPDY with stdout, stderr and the exit code', async () => {
    const result = await spdyExec(await execUrl(['sh', '-c', 'echo out; echo err >&2; exit 3']), { stdout: true, stderr: true });
    expect(result.protocol).toBe('v4.channel.k8s.io');
    expect(result.stdout.toString()).toBe('out\n');
    expect(result.stderr.toString()).toBe('err\n');
    expect(exitCodeOf(result)).toBe(3);
    const ok = await spdyExec(await execUrl(['true']), { stdout: true, stderr: true });
    expect(exitCodeOf(ok)).toBe(0);
  });

  it('feeds stdin and ends it when the client does', async () => {
    const result = await spdyExec(await execUrl(['sh', '-c', 'cat; echo done; exit 7'], { stdin: true }), { stdin: Buffer.from('from stdin\n'), stdout: true, stderr: true });
    expect(result.stdout.toString()).toBe('from stdin\ndone\n');
    expect(exitCodeOf(result)).toBe(7);
  });

  it('execs over WebSocket v5 (stdin closed with its CLOSE signal) and v4', async () => {
    const v5 = await wsExec(await execUrl(['sh', '-c', 'cat; exit 4'], { stdin: true }), { protocol: 'v5.channel.k8s.io', stdin: Buffer.from('via v5'), stdout: true, stderr: true });
    expect(v5.stdout.toString()).toBe('via v5');
    expect(exitCodeOf(v5)).toBe(4);
    // v4 has no way to close stdin: a command that reads it would wait forever (as with the kubelet).
    const v4 = await wsExec(await execUrl(['sh', '-c', 'echo via v4; exit 5']), { protocol: 'v4.channel.k8s.io', stdout: true, stderr: true });
    expect(v4.stdout.toString()).toBe('via v4\n');
    expect(exitCodeOf(v4)).toBe(5);
  });

  it('gives a tty exec a terminal and applies resizes', async () => {
    // Waits for the resize to arrive (up to 5 s) rather than a fixed time, then prints the size once more.
    const script = 'tty; i=0; while [ "$(stty size 2>/dev/null)" != "40 120" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; stty size';
    const result = await spdyExec(await execUrl(['sh', '-c', script], { tty: true, stdin: true }), {
      tty: true,
      stdin: Buffer.alloc(0),
      stdout: true,
      resizes: [{ width: 120, height: 40 }],
    });
    expect(result.stdout.toString()).toMatch(/\/dev\/pts\/\d+\r?\n40 120/);
    expect(exitCodeOf(result)).toBe(0);
  });

  // berthd's memory over such a transfer (its VmRSS growth) is a benchmark's to measure, not a test's
  // to bound: a busy machine moves the figure.
  it('moves 100 MB of exec output intact', async () => {
    let bytes = 0;
    let nonZero = 0;
    const result = await spdyExec(await execUrl(['sh', '-c', 'head -c 100000000 /dev/zero']), {
      stdout: true,
      stderr: true,
      onStdout: (c) => {
        bytes += c.length;
        if (!allZero(c)) nonZero++;
      },
    });
    expect(bytes).toBe(100_000_000);
    expect(nonZero).toBe(0);
    expect(result.stderr.toString()).toBe('');
    expect(exitCodeOf(result)).toBe(0);
  }, 60_000);

  it('runs 50 exec sessions at once', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_x, i) => spdyExec(await execUrl(['sh', '-c', `echo session-${i}; exit ${i % 5}`]), { stdout: true, stderr: true })),
    );
    results.forEach((r, i) => {
      expect(r.stdout.toString()).toBe(`session-${i}\n`);
      expect(exitCodeOf(r)).toBe(i % 5);
    });
  }, 60_000);

  it('attaches to a container reading stdin and leaves it running after detach', async () => {
    const reader = await runIn(pod, ctr('reader', 'while read line; do echo "got:$line"; done; echo eof', { stdin: true, stdin_once: true }));
    const url = (await rt().Attach({ container_id: reader, stdin: true, stdout: true, stderr: true, tty: false })).url;
    const result = await spdyExec(url, { stdin: Buffer.from('one\ntwo\n'), stdout: true, stderr: true });
    expect(result.stdout.toString()).toBe('got:one\ngot:two\neof\n');
    const watcher = await runIn(pod, ctr('watcher', 'while true; do echo tick; sleep 0.1; done'));
    const url2 = (await rt().Attach({ container_id: watcher, stdin: false, stdout: true, stderr: true, tty: false })).url;
    let seen = '';
    const session = spdyExec(url2, { stdout: true, stderr: true, onStdout: (c) => (seen += c.toString()) });
    await until('a tick through the attach session', () => seen.includes('tick\n'));
    await rt().StopContainer({ container_id: watcher, timeout: 0 });
    await session;
    expect(seen).toMatch(/^(tick\n)+$/);
    await expect(rt().Attach({ container_id: reader, stdin: true, stdout: true, stderr: false, tty: false })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
  });

  it('forwards ports into a pod network namespace and a hostNetwork pod', async () => {
    await runIn(pod, ctr('web', 'while true; do nc -l -p 8080 -e echo served-in-pod; done'));
    const hostPort = await freePort();
    const hostPod = await runPod('hostnet', { linux: { security_context: { namespace_options: { network: 'NODE' } } } });
    await runIn(hostPod, ctr('web', `while true; do nc -l -p ${hostPort} -e echo served-on-host; done`));
    /** What one forwarded connection to the port reads ('' while nothing listens there yet). */
    const readThrough = async (podId: string, port: number): Promise<string> => {
      const forwarder = await SpdyPortForwarder.connect((await rt().PortForward({ pod_sandbox_id: podId, port: [port] })).url);
      try {
        const { data } = await forwarder.forward(port);
        return await new Promise<string>((resolve) => {
          let out = '';
          data.on('data', (c: Buffer) => (out += c.toString()));
          data.on('end', () => resolve(out));
        });
      } finally {
        await forwarder.close();
      }
    };
    for (const [p, port, text] of [[pod, 8080, 'served-in-pod'], [hostPod, hostPort, 'served-on-host']] as const) {
      // Until the container's nc listens (a forward to a closed port reads nothing).
      const got = await until(`an answer forwarded from port ${port}`, async () => (await readThrough(p.id, port)) || undefined);
      expect(got.trim()).toBe(text);
    }
  });

  it('keeps the container and an exec session\'s command going across kill -9 of berthd; sessions work again after the restart', async () => {
    const marker = `/tmp/exec-survived-${process.pid}`;
    // The exec'd command runs under a monitor of its own, which outlives berthd (as the container's does).
    const session = spdyExec(await execUrl(['sh', '-c', `sleep 1.5; echo done > ${marker}; echo late`]), { stdout: true, stderr: true }).catch((err: Error) => err);
    await until('the exec\'d command to run', () => pidsWithCmdline(marker).length > 0);
    const containerPid = (JSON.parse((await rt().ContainerStatus({ container_id: shell, verbose: true })).info.info) as { pid: number }).pid;
    await berthd.stop('SIGKILL');
    await session; // cut with berthd: its client sees the end, whatever it got
    berthd = await startBerthd({ dir: berthd.dir, args: ['--cni-conf-dir', env!.network.confDir] });
    expect((await rt().ContainerStatus({ container_id: shell })).status?.state).toBe('CONTAINER_RUNNING');
    expect(fs.existsSync(`/proc/${containerPid}`)).toBe(true);
    const finished = await spdyExec(await execUrl(['sh', '-c', `sleep 2; cat ${marker}; rm -f ${marker}`]), { stdout: true, stderr: true });
    expect(finished.stdout.toString()).toBe('done\n');
    expect(exitCodeOf(finished)).toBe(0);
  }, 60_000);

  it('refuses a used URL and bad requests', async () => {
    const url = await execUrl(['true']);
    await spdyExec(url, { stdout: true, stderr: true });
    await expect(spdyExec(url, { stdout: true, stderr: true })).rejects.toBeInstanceOf(HttpStatusError);
    await expect(rt().Exec({ container_id: shell, cmd: ['true'], tty: true, stdout: true, stderr: true })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(rt().Exec({ container_id: 'nope', cmd: ['true'], stdout: true })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(rt().PortForward({ pod_sandbox_id: 'nope', port: [80] })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});
