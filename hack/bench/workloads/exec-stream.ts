// Streaming $BENCH_STREAM_BYTES (default 100 MB) of exec output through the runtime's streaming server, as
// kubectl exec reads it: per iteration the CRI Exec RPC for `head -c N /dev/zero` (stdout and stderr, no
// stdin, no tty), then the whole output read from the URL it returns, timed together. Over SPDY/3.1 with
// client-go's stream protocol (what the kubelet and the API server speak to a runtime's streaming server)
// and over WebSocket v5 (kubectl's own protocol since 1.30); $BENCH_STREAM_PROTOCOLS picks (`spdy,ws`).
// A server that refuses the v5 handshake has that protocol reported as unimplemented.
//
// Memory: besides the framework's per-step figures (daemon VmRSS max, lifetime VmHWM), each transfer
// records the streaming server's VmRSS before it, its peak during it and after it (../stream-daemon.ts),
// printed per transfer and summed up per protocol at teardown (stderr); $BENCH_STREAM_JSON appends them
// as one JSON line per endpoint.
import fs from 'node:fs';
import type { CallOptions, CriClient } from '../../../src/client/cri-client';
import { exitCodeOf, HttpStatusError, spdyExec, wsExec, type CommandResult } from '../../../test/support/streaming-client';
import { findTcpListener, RssWatch, type TransferMemory } from '../stream-daemon';
import { defineWorkload, GRPC_UNIMPLEMENTED, Recorder, skipUnimplemented, type Timer } from '../workload';
import { benchContainer, benchPod, removeBenchPod, type BenchPod } from './container';

const bytes = (): number => Number(process.env.BENCH_STREAM_BYTES ?? 100_000_000);
const mb = (n: number): string => `${Number((n / 1e6).toFixed(1))} MB`;

type Protocol = 'spdy' | 'ws';
const RPC: Record<Protocol, string> = {
  spdy: `Exec + ${mb(bytes())} stdout, SPDY`,
  ws: `Exec + ${mb(bytes())} stdout, WebSocket v5`,
};

function protocols(): Protocol[] {
  const raw = (process.env.BENCH_STREAM_PROTOCOLS ?? 'spdy,ws').split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of raw) if (p !== 'spdy' && p !== 'ws') throw new Error(`BENCH_STREAM_PROTOCOLS: ${JSON.stringify(p)} is neither spdy nor ws`);
  return raw as Protocol[];
}

/** A transfer that has not finished after this long fails the workload (a stalled stream would hang the run). */
const TRANSFER_TIMEOUT_MS = 300_000;

interface Transfer {
  protocol: Protocol;
  iteration: number;
  measured: boolean;
  ms: number;
  received: number;
  exitCode: number | string;
  memory?: TransferMemory;
}

interface Daemon {
  port: number;
  pid?: number;
  comm?: string;
  note?: string;
}

interface State extends BenchPod {
  containerId: string;
  daemon: Daemon;
  transfers: Transfer[];
}

function portOf(url: string): number {
  const u = new URL(url);
  return Number(u.port || (u.protocol === 'https:' ? 443 : 80));
}

function lookUp(port: number): Daemon {
  const found = findTcpListener(port);
  return found.pid === undefined ? { port, note: found.reason } : { port, pid: found.pid, comm: found.comm };
}

/** A refused WebSocket v5 handshake, as the framework's UNIMPLEMENTED. */
function unimplementedIfRefused(err: unknown, side: string): never {
  const refused =
    (err instanceof HttpStatusError && err.status >= 400 && err.status < 500) ||
    (err instanceof Error && /subprotocol/i.test(err.message));
  if (!refused) throw err;
  const message = `WebSocket v5 refused: ${(err as Error).message}`;
  log(`side ${side}: ${message}`);
  throw Object.assign(new Error(message), { code: GRPC_UNIMPLEMENTED });
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not finished after ${TRANSFER_TIMEOUT_MS / 1000} s`)), TRANSFER_TIMEOUT_MS);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

const MiB = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;
const signedMiB = (kib: number): string => `${kib >= 0 ? '+' : ''}${(kib / 1024).toFixed(1)} MiB`;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

function describeTransfer(t: Transfer): string {
  const rate = t.received / 1e6 / (t.ms / 1000);
  const head = `${t.protocol} #${t.iteration}${t.measured ? '' : ' (warm-up)'}: ${mb(t.received)} in ${(t.ms / 1000).toFixed(2)} s, ${rate.toFixed(1)} MB/s, exit ${t.exitCode}`;
  const m = t.memory;
  if (!m) return head;
  return `${head}; daemon RSS ${MiB(m.beforeKiB)} before, peak ${MiB(m.peakKiB)} (${signedMiB(m.peakKiB - m.beforeKiB)}), ${MiB(m.afterKiB)} after, HWM ${MiB(m.hwmKiB)}`;
}

function sideOf(runId: string): string {
  return runId.endsWith('-b') ? 'B' : runId.endsWith('-a') ? 'A' : runId;
}

function log(line: string): void {
  process.stderr.write(`bench: exec-stream: ${line}\n`);
}

export default defineWorkload<State>({
  name: 'exec-stream',
  description:
    'Exec `head -c $BENCH_STREAM_BYTES /dev/zero` (default 100 MB) and read all of stdout over SPDY and WebSocket v5, timed together; the streaming server\'s RSS per transfer (stderr)',
  rpcs: [RPC.spdy, RPC.ws],
  requires: ['BENCH_CONTAINER_IMAGE'],
  async setup(client, call) {
    protocols();
    const pod = await benchPod(client, call, `bench-stream-${process.pid}-${Date.now() % 100000}`);
    const config = benchContainer('stream', ['sleep', '3600']);
    const { container_id } = await client.runtime.CreateContainer({ pod_sandbox_id: pod.podId, config, sandbox_config: pod.config }, { timeoutMs: 60_000 });
    await client.runtime.StartContainer({ container_id }, call);
    // One small exec, untimed: the streaming server works, and which process serves it.
    const { url } = await client.runtime.Exec({ container_id, cmd: ['true'], stdout: true, stderr: true }, call);
    const daemon = lookUp(portOf(url));
    await spdyExec(url, { stdout: true, stderr: true });
    if (daemon.pid === undefined) log(`no memory figures per transfer: ${daemon.note}`);
    return { ...pod, containerId: container_id, daemon, transfers: [] };
  },
  async run(client, timer, { state, call, iteration, runId }) {
    // Warm-up steps all come before the first measured round: until then the recorder has no rounds.
    const measured = !(timer instanceof Recorder) || timer.rounds.length > 0;
    for (const protocol of protocols()) {
      await transfer(client, timer, state, protocol, { call, iteration, measured, runId }).catch(skipUnimplemented);
    }
  },
  async teardown(client, { state, runId }) {
    try {
      summarise(state, runId);
    } finally {
      await removeBenchPod(client, state);
    }
  },
});

async function transfer(
  client: CriClient,
  timer: Timer,
  state: State,
  protocol: Protocol,
  ctx: { call: CallOptions; iteration: number; measured: boolean; runId: string },
): Promise<void> {
  const n = bytes();
  const watch = state.daemon.pid !== undefined ? new RssWatch(state.daemon.pid) : undefined;
  let received = 0;
  const onStdout = (c: Buffer): void => {
    received += c.length;
  };
  let port = state.daemon.port;
  watch?.start();
  const started = process.hrtime.bigint();
  let result: CommandResult;
  let memory: TransferMemory | undefined;
  try {
    result = await timer.time(RPC[protocol], async () => {
      const { url } = await client.runtime.Exec(
        { container_id: state.containerId, cmd: ['head', '-c', String(n), '/dev/zero'], stdout: true, stderr: true },
        ctx.call,
      );
      port = portOf(url);
      const reading =
        protocol === 'spdy'
          ? spdyExec(url, { stdout: true, stderr: true, onStdout })
          : wsExec(url, { protocol: 'v5.channel.k8s.io', onStdout }).catch((err: unknown) => unimplementedIfRefused(err, sideOf(ctx.runId)));
      return withTimeout(reading, `${protocol} transfer`);
    });
  } finally {
    memory = watch?.stop();
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  // No status at all (the connection ended without one) is success to client-go; it is told apart here.
  let exitCode: number | string = 'none (no status)';
  try {
    if (result.error) exitCode = exitCodeOf(result);
  } catch {
    exitCode = JSON.stringify(result.error);
  }
  const t: Transfer = { protocol, iteration: ctx.iteration, measured: ctx.measured, ms, received, exitCode };
  // A streaming server on another port is another process (a restarted daemon): this transfer's memory
  // figures would be someone else's; look it up again for the next one.
  if (port !== state.daemon.port) {
    log(`side ${sideOf(ctx.runId)}: the streaming server moved to port ${port}; memory figures of #${ctx.iteration} dropped`);
    state.daemon = lookUp(port);
  } else if (memory) {
    t.memory = memory;
  }
  state.transfers.push(t);
  log(`side ${sideOf(ctx.runId)} (${state.daemon.comm ?? '?'} pid ${state.daemon.pid ?? '?'}): ${describeTransfer(t)}`);
  // Reported, not fatal: a runtime that drops the end of the output still gets its time measured.
  if (received !== n) log(`side ${sideOf(ctx.runId)}: ${protocol} #${ctx.iteration}: ${received} bytes of ${n}`);
}

function summarise(state: State, runId: string): void {
  const side = sideOf(runId);
  for (const protocol of ['spdy', 'ws'] as const) {
    const ts = state.transfers.filter((t) => t.protocol === protocol && t.measured);
    if (!ts.length) continue;
    const rates = ts.map((t) => t.received / 1e6 / (t.ms / 1000));
    const short = ts.filter((t) => t.received !== bytes());
    const mem = ts.flatMap((t) => (t.memory ? [t.memory] : []));
    let line =
      `side ${side} (${state.daemon.comm ?? '?'} pid ${state.daemon.pid ?? '?'}), ${protocol}, ${ts.length} measured transfers: ` +
      `time median ${(median(ts.map((t) => t.ms)) / 1000).toFixed(2)} s, MB/s median ${median(rates).toFixed(1)} (min ${Math.min(...rates).toFixed(1)}, max ${Math.max(...rates).toFixed(1)})`;
    if (short.length) line += `, ${short.length} short (least ${mb(Math.min(...short.map((t) => t.received)))})`;
    if (mem.length) {
      const growth = mem.map((m) => m.peakKiB - m.beforeKiB);
      const kept = mem.map((m) => m.afterKiB - m.beforeKiB);
      line +=
        `; daemon RSS before median ${MiB(median(mem.map((m) => m.beforeKiB)))}, peak max ${MiB(Math.max(...mem.map((m) => m.peakKiB)))}, ` +
        `growth during a transfer median ${signedMiB(median(growth))} (max ${signedMiB(Math.max(...growth))}), after - before median ${signedMiB(median(kept))}, ` +
        `HWM ${MiB(Math.max(...mem.map((m) => m.hwmKiB)))}`;
    }
    log(line);
  }
  const file = process.env.BENCH_STREAM_JSON;
  if (file) {
    const record = { runId, side, daemon: state.daemon, bytes: bytes(), transfers: state.transfers };
    fs.appendFileSync(file, JSON.stringify(record) + '\n');
  }
}
