// Runs workloads against one or two endpoints by the schedule, and gathers latencies and memory.
import type { CallOptions, CriClient } from '../../src/client/cri-client';
import { mergePeaks, type MemoryPeak, type MemoryTarget, type Sampler } from './memory';
import { schedule, type Side } from './schedule';
import { ratio, summarize, type LatencySummary } from './stats';
import { isUnimplemented, Recorder, RpcUnimplemented, type Workload } from './workload';

export interface EndpointUnderTest {
  side: Side;
  label: string;
  endpoint: string;
  client: CriClient;
  /** Where to sample memory; undefined when the daemon could not be found (then `memoryNote` says why). */
  memory?: MemoryTarget;
  memoryNote?: string;
}

export interface RunParams {
  iterations: number;
  rounds: number;
  warmup: number;
  timeoutMs: number;
}

export interface RunDeps {
  sampler?: Sampler;
  /** Unique per run: workloads name what they create after it. */
  runId: string;
  progress?: (line: string) => void;
}

export type RpcStatus = 'ok' | 'unimplemented' | 'not-run';

export interface RpcResult {
  status: RpcStatus;
  /** All measured rounds together. */
  summary?: LatencySummary;
  /** Round by round (null: nothing measured in that round), to see drift. */
  rounds: (LatencySummary | null)[];
}

export interface SideResult {
  /** `unimplemented`: at least one of the workload's RPCs (or its setup) answered UNIMPLEMENTED. */
  status: 'ok' | 'unimplemented' | 'error';
  error?: string;
  unimplemented: string[];
  rpcs: Record<string, RpcResult>;
  memory?: MemoryPeak;
  memoryNote?: string;
}

export interface WorkloadResult {
  name: string;
  description: string;
  rpcs: string[];
  sides: Partial<Record<Side, SideResult>>;
  /** A/B per RPC, of p50 and p95; only where both endpoints measured it. */
  ratios: Record<string, { p50?: number; p95?: number }>;
}

interface SideState {
  recorder: Recorder;
  setupDone: boolean;
  state: unknown;
  iteration: number;
  /** A setup that answered UNIMPLEMENTED: nothing of the workload can run. */
  setupUnimplemented?: string;
  error?: string;
  peaks: MemoryPeak[];
  memoryNote?: string;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).trim();

export async function runBenchmark(
  workloads: readonly Workload[],
  endpoints: readonly EndpointUnderTest[],
  params: RunParams,
  deps: RunDeps,
): Promise<WorkloadResult[]> {
  const call: CallOptions = { timeoutMs: params.timeoutMs };
  const progress = deps.progress ?? (() => {});
  const bySide = new Map(endpoints.map((e) => [e.side, e]));
  const steps = schedule(
    workloads.map((w) => w.name),
    endpoints.map((e) => e.side),
    params.rounds,
    params.warmup > 0,
  );
  const results: WorkloadResult[] = [];

  for (const workload of workloads) {
    const states = new Map<Side, SideState>(
      endpoints.map((e) => [
        e.side,
        { recorder: new Recorder(), setupDone: false, state: undefined, iteration: 0, peaks: [], memoryNote: e.memoryNote },
      ]),
    );
    const runId = (side: Side) => `${deps.runId}-${side}`;
    try {
      for (const step of steps.filter((s) => s.workload === workload.name)) {
        const ep = bySide.get(step.side)!;
        const st = states.get(step.side)!;
        if (st.error || st.setupUnimplemented) continue;
        if (!st.setupDone) {
          st.setupDone = true;
          try {
            st.state = workload.setup ? await workload.setup(ep.client, call) : undefined;
          } catch (err) {
            if (isUnimplemented(err)) st.setupUnimplemented = `setup: ${errorText(err)}`;
            else st.error = `setup: ${errorText(err)}`;
            progress(`${workload.name}: ${ep.label}: ${st.setupUnimplemented ?? st.error}`);
            continue;
          }
        }
        const measure = step.phase === 'measure';
        const count = measure ? params.iterations : params.warmup;
        st.recorder.beginStep(measure);
        const sampling = measure && deps.sampler !== undefined && ep.memory !== undefined;
        if (sampling) deps.sampler!.start(ep.memory!);
        const started = process.hrtime.bigint();
        let done = 0;
        try {
          for (; done < count; done++) {
            const before = st.recorder.calls;
            try {
              const ctx = { state: st.state, iteration: st.iteration++, runId: runId(step.side), call };
              await workload.run(ep.client, st.recorder, ctx);
            } catch (err) {
              if (!(err instanceof RpcUnimplemented)) throw err;
              // Nothing was measured in this iteration: what is left depends on an unimplemented RPC.
              if (st.recorder.calls === before) break;
            }
          }
        } catch (err) {
          st.error = errorText(err);
        } finally {
          if (sampling) {
            try {
              st.peaks.push(await deps.sampler!.stop());
            } catch (err) {
              st.memoryNote = errorText(err);
            }
          }
        }
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const what = step.phase === 'warmup' ? 'warm-up' : `round ${step.round}/${params.rounds}`;
        const unimplemented = [...st.recorder.unimplemented].join(', ');
        const tail = st.error ? `: error: ${st.error}` : unimplemented ? ` (unimplemented: ${unimplemented})` : '';
        progress(`${workload.name}: ${ep.label}: ${what}: ${done} iterations in ${ms.toFixed(0)} ms${tail}`);
      }
    } finally {
      for (const ep of endpoints) {
        const st = states.get(ep.side)!;
        if (!st.setupDone || st.setupUnimplemented || !workload.teardown) continue;
        if (st.error?.startsWith('setup:')) continue;
        try {
          await workload.teardown(ep.client, { state: st.state, runId: runId(ep.side), call });
        } catch (err) {
          st.error = (st.error ? `${st.error}; ` : '') + `teardown: ${errorText(err)}`;
        }
      }
    }
    results.push(collect(workload, endpoints, states));
  }
  return results;
}

function collect(workload: Workload, endpoints: readonly EndpointUnderTest[], states: Map<Side, SideState>): WorkloadResult {
  const sides: Partial<Record<Side, SideResult>> = {};
  for (const ep of endpoints) {
    const st = states.get(ep.side)!;
    const rec = st.recorder;
    const rpcs: Record<string, RpcResult> = {};
    for (const rpc of workload.rpcs) {
      const summary = summarize(rec.samples(rpc));
      const status: RpcStatus =
        rec.unimplemented.has(rpc) || (!summary && st.setupUnimplemented) ? 'unimplemented' : summary ? 'ok' : 'not-run';
      rpcs[rpc] = { status, summary, rounds: rec.rounds.map((r) => summarize(r.get(rpc) ?? []) ?? null) };
    }
    const unimplemented = [...rec.unimplemented];
    const side: SideResult = {
      status: st.error ? 'error' : unimplemented.length || st.setupUnimplemented ? 'unimplemented' : 'ok',
      unimplemented,
      rpcs,
    };
    if (st.error) side.error = st.error;
    else if (st.setupUnimplemented) side.error = st.setupUnimplemented;
    if (st.peaks.length) side.memory = mergePeaks(st.peaks);
    if (st.memoryNote) side.memoryNote = st.memoryNote;
    sides[ep.side] = side;
  }
  const ratios: WorkloadResult['ratios'] = {};
  const a = sides.a;
  const b = sides.b;
  if (a && b) {
    for (const rpc of workload.rpcs) {
      const sa = a.rpcs[rpc].summary;
      const sb = b.rpcs[rpc].summary;
      if (sa && sb) ratios[rpc] = { p50: ratio(sa.p50Us, sb.p50Us), p95: ratio(sa.p95Us, sb.p95Us) };
    }
  }
  return { name: workload.name, description: workload.description, rpcs: [...workload.rpcs], sides, ratios };
}
