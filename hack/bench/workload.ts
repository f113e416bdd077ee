// What a workload is, and the timer it measures its RPCs with.
//
// A workload is one file in ./workloads exporting (as default) a `Workload`. The benchmark calls `setup` once
// per endpoint before the workload's first step there, `run` once per iteration, and `teardown` once after the
// last step (also after a failure). Whatever `setup` returns is handed to `run` and `teardown` as `ctx.state`:
// a workload keeps no state of its own in module scope, because it runs against two endpoints at once.
import type { CallOptions, CriClient } from '../../src/client/cri-client';

export interface RunContext<S> {
  state: S;
  /** 0-based, counting across every step of this workload on this endpoint (warm-up included). */
  iteration: number;
  /** Unique to this run and endpoint, for naming what a workload creates (pods, containers). */
  runId: string;
  /** Pass these to every RPC: they carry the deadline. */
  call: CallOptions;
}

export interface Timer {
  /**
   * Calls `call` and records its latency under `rpc`. If the endpoint answers UNIMPLEMENTED, records that
   * instead and throws `RpcUnimplemented` (and any later call of the same rpc throws it at once, without
   * calling); any other error is thrown as `RpcFailed`.
   */
  time<T>(rpc: string, call: () => Promise<T>): Promise<T>;
}

export interface Workload<S = unknown> {
  name: string;
  description: string;
  /** The RPCs it measures, in the order to report them. */
  rpcs: readonly string[];
  /** Environment variables it needs (e.g. the image to pull); without them it runs only when named. */
  requires?: readonly string[];
  setup?(client: CriClient, call: CallOptions): Promise<S>;
  run(client: CriClient, timer: Timer, ctx: RunContext<S>): Promise<void>;
  teardown?(client: CriClient, ctx: Omit<RunContext<S>, 'iteration'>): Promise<void>;
}

/** For a typed workload file: `export default defineWorkload({ ... })`. */
export function defineWorkload<S>(w: Workload<S>): Workload<S> {
  return w;
}

export const GRPC_UNIMPLEMENTED = 12;

export function isUnimplemented(err: unknown): boolean {
  return (
    err instanceof RpcUnimplemented ||
    (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === GRPC_UNIMPLEMENTED)
  );
}

export class RpcUnimplemented extends Error {
  override name = 'RpcUnimplemented';
  constructor(readonly rpc: string) {
    super(`${rpc}: UNIMPLEMENTED`);
  }
}

export class RpcFailed extends Error {
  override name = 'RpcFailed';
  constructor(
    readonly rpc: string,
    readonly cause: unknown,
  ) {
    super(`${rpc}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** `.catch(skipUnimplemented)` after an RPC that the rest of the iteration does not depend on. */
export function skipUnimplemented(err: unknown): void {
  if (!(err instanceof RpcUnimplemented)) throw err;
}

/** The samples of one workload on one endpoint. */
export class Recorder implements Timer {
  /** rpc → latencies in ns, per measured round (index 0 = round 1). */
  readonly rounds: Map<string, number[]>[] = [];
  readonly unimplemented = new Set<string>();
  private current: Map<string, number[]> | undefined;
  /** Calls recorded since the last `resetCount`, measured or not. */
  calls = 0;

  constructor(private readonly now: () => bigint = process.hrtime.bigint) {}

  /** Start recording into a new round; `measure` false for a warm-up (calls happen, nothing is kept). */
  beginStep(measure: boolean): void {
    if (measure) {
      this.current = new Map();
      this.rounds.push(this.current);
    } else {
      this.current = undefined;
    }
  }

  async time<T>(rpc: string, call: () => Promise<T>): Promise<T> {
    if (this.unimplemented.has(rpc)) throw new RpcUnimplemented(rpc);
    const start = this.now();
    let result: T;
    try {
      result = await call();
    } catch (err) {
      if (isUnimplemented(err)) {
        this.unimplemented.add(rpc);
        throw new RpcUnimplemented(rpc);
      }
      throw new RpcFailed(rpc, err);
    }
    const ns = Number(this.now() - start);
    this.calls++;
    if (this.current) {
      let list = this.current.get(rpc);
      if (!list) this.current.set(rpc, (list = []));
      list.push(ns);
    }
    return result;
  }

  /** All measured samples of `rpc`, every round. */
  samples(rpc: string): number[] {
    return this.rounds.flatMap((r) => r.get(rpc) ?? []);
  }
}
