// The kubelet-like workload of one round: concurrent workers, each running pods one after another
// (RunPodSandbox, 1-3 containers created and started, ExecSync, ContainerStatus, StopContainer,
// RemoveContainer, a container re-created, StopPodSandbox, RemovePodSandbox, at random), until berthd is
// killed. Every call is tracked: which were in flight at the kill, which failed how, and what is known to
// be running (for the check that containers do not notice berthd's restart).
import { status as grpcStatus } from '@grpc/grpc-js';
import path from 'node:path';
import type { CriClient } from '../../src/client/cri-client';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { between, chance, deriveSeed, intBetween, mulberry32, pick, type Rng } from './prng';

export type Method =
  | 'RunPodSandbox'
  | 'StopPodSandbox'
  | 'RemovePodSandbox'
  | 'CreateContainer'
  | 'StartContainer'
  | 'StopContainer'
  | 'RemoveContainer'
  | 'ContainerStatus'
  | 'ExecSync';

export interface Call {
  seq: number;
  method: Method;
  /** The pod or container it is about (empty for a RunPodSandbox not answered yet). */
  target: string;
  request: unknown;
  startedMs: number;
  /** For CreateContainer: the pod's config, to retry it. */
  pod?: PodState;
  ctr?: CtrState;
}

export interface PodState {
  name: string;
  id?: string;
  config: PodSandboxConfig;
  sharedPid: boolean;
  /** StopPodSandbox or RemovePodSandbox was sent (its containers may have been stopped). */
  stopSent: boolean;
  ctrs: CtrState[];
}

export interface CtrState {
  name: string;
  attempt: number;
  kind: 'sleep' | 'exit3';
  id?: string;
  pod: PodState;
  config: ContainerConfig;
  /** StartContainer answered OK. */
  started: boolean;
  /** StopContainer or RemoveContainer was sent. */
  stopSent: boolean;
}

export interface Violation {
  kind: string;
  detail: string;
  /** Ids it is about, to pick the daemon's log lines. */
  ids: string[];
}

export interface RoundState {
  round: number;
  handler: string;
  image: string;
  logDir: string;
  client: CriClient;
  /** Set when the kill is sent: no new call starts, calls ending from now on were cut. */
  killed: boolean;
  killAtMs: number;
  t0: number;
  seq: number;
  inflight: Map<number, Call>;
  /** Snapshot of `inflight` at the kill. */
  cut: Call[];
  pods: PodState[];
  /** Every pod and container id any response named (for the cgroup scan). */
  ids: Set<string>;
  violations: Violation[];
  /** Errors before the kill that are not violations, by method and code (expected races: NOT_FOUND...). */
  errors: Record<string, number>;
  calls: number;
}

export const CALL_TIMEOUT_MS = 60_000;
const codeName = (code: unknown) => (typeof code === 'number' ? (grpcStatus[code] ?? String(code)) : 'NONE');

export function isBrokenCode(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === grpcStatus.INTERNAL || code === grpcStatus.UNKNOWN;
}

export function errCode(err: unknown): string {
  return codeName((err as { code?: unknown }).code);
}

export function errText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).trim().slice(0, 500);
}

class Killed extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A call of the workload: tracked while in flight; undefined on an error (recorded), Killed once cut. */
async function call<T>(s: RoundState, method: Method, target: string, request: unknown, fn: () => Promise<T>, extra: Partial<Call> = {}): Promise<T | undefined> {
  if (s.killed) throw new Killed();
  const c: Call = { seq: ++s.seq, method, target, request, startedMs: Date.now() - s.t0, ...extra };
  s.inflight.set(c.seq, c);
  s.calls++;
  try {
    return await fn();
  } catch (err) {
    if (s.killed) throw new Killed();
    if (isBrokenCode(err)) s.violations.push({ kind: 'call-failed-internal', detail: `${method} ${target}: ${errText(err)}`, ids: target ? [target] : [] });
    const key = `${method}:${errCode(err)}`;
    s.errors[key] = (s.errors[key] ?? 0) + 1;
    return undefined;
  } finally {
    s.inflight.delete(c.seq);
  }
}

function podConfig(s: RoundState, name: string, sharedPid: boolean): PodSandboxConfig {
  return {
    metadata: { name, namespace: 'crash', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: path.join(s.logDir, name),
    linux: { security_context: { namespace_options: { network: 'POD', pid: sharedPid ? 'POD' : 'CONTAINER', ipc: 'POD' } } },
  };
}

function ctrConfig(s: RoundState, pod: PodState, name: string, attempt: number, kind: CtrState['kind']): ContainerConfig {
  return {
    metadata: { name, attempt },
    image: { image: s.image },
    command: kind === 'sleep' ? ['sleep', '3600'] : ['sh', '-c', 'exit 3'],
    log_path: `${name}_${attempt}.log`,
    linux: { security_context: { namespace_options: { pid: pod.sharedPid ? 'POD' : 'CONTAINER', network: 'POD', ipc: 'POD' } } },
  };
}

async function addContainer(s: RoundState, rng: Rng, pod: PodState, name: string, attempt: number): Promise<void> {
  const kind = chance(rng, 0.7) ? 'sleep' : 'exit3';
  const ctr: CtrState = { name, attempt, kind, pod, config: ctrConfig(s, pod, name, attempt, kind), started: false, stopSent: false };
  pod.ctrs.push(ctr);
  const req = { pod_sandbox_id: pod.id!, config: ctr.config, sandbox_config: pod.config };
  const res = await call(s, 'CreateContainer', pod.id!, req, () => s.client.runtime.CreateContainer(req, { timeoutMs: CALL_TIMEOUT_MS }), { pod, ctr });
  if (!res) return;
  ctr.id = res.container_id;
  s.ids.add(ctr.id);
  const ok = await call(s, 'StartContainer', ctr.id, { container_id: ctr.id }, () => s.client.runtime.StartContainer({ container_id: ctr.id! }, { timeoutMs: CALL_TIMEOUT_MS }), { ctr });
  if (ok) ctr.started = true;
}

/** One worker: pods one after another until the kill. */
async function worker(s: RoundState, w: number, seed: number): Promise<void> {
  const rng = mulberry32(seed);
  for (let n = 0; !s.killed; n++) {
    const sharedPid = chance(rng, 0.4);
    const name = `r${s.round}-w${w}-p${n}`;
    const pod: PodState = { name, config: podConfig(s, name, sharedPid), sharedPid, stopSent: false, ctrs: [] };
    s.pods.push(pod);
    const req = { config: pod.config, runtime_handler: s.handler };
    const res = await call(s, 'RunPodSandbox', '', req, () => s.client.runtime.RunPodSandbox(req, { timeoutMs: CALL_TIMEOUT_MS }), { pod });
    if (!res) {
      await sleep(200);
      continue;
    }
    pod.id = res.pod_sandbox_id;
    s.ids.add(pod.id);
    const initial = intBetween(rng, 1, 3);
    for (let i = 0; i < initial; i++) await addContainer(s, rng, pod, `c${i}`, 0);
    let next = initial;
    const steps = intBetween(rng, 1, 6);
    for (let k = 0; k < steps; k++) {
      await sleep(between(rng, 10, 150));
      const ctr = pick(rng, pod.ctrs.filter((c) => c.id));
      const op = rng();
      if (op < 0.3 && ctr) {
        const r = { container_id: ctr.id!, cmd: ['sh', '-c', 'echo ok'], timeout: 10 };
        await call(s, 'ExecSync', ctr.id!, r, () => s.client.runtime.ExecSync(r, { timeoutMs: CALL_TIMEOUT_MS }), { ctr });
      } else if (op < 0.45 && ctr) {
        await call(s, 'ContainerStatus', ctr.id!, { container_id: ctr.id! }, () => s.client.runtime.ContainerStatus({ container_id: ctr.id! }, { timeoutMs: CALL_TIMEOUT_MS }), { ctr });
      } else if (op < 0.6 && ctr) {
        ctr.stopSent = true;
        const r = { container_id: ctr.id!, timeout: intBetween(rng, 0, 2) };
        await call(s, 'StopContainer', ctr.id!, r, () => s.client.runtime.StopContainer(r, { timeoutMs: CALL_TIMEOUT_MS }), { ctr });
      } else if (op < 0.75 && ctr) {
        ctr.stopSent = true;
        await call(s, 'RemoveContainer', ctr.id!, { container_id: ctr.id! }, () => s.client.runtime.RemoveContainer({ container_id: ctr.id! }, { timeoutMs: CALL_TIMEOUT_MS }), { ctr });
      } else if (op < 0.9 && pod.ctrs.length < 4) {
        await addContainer(s, rng, pod, `c${next++}`, 0);
      }
    }
    await sleep(between(rng, 0, 100));
    if (chance(rng, 0.8)) {
      pod.stopSent = true;
      await call(s, 'StopPodSandbox', pod.id, { pod_sandbox_id: pod.id }, () => s.client.runtime.StopPodSandbox({ pod_sandbox_id: pod.id! }, { timeoutMs: CALL_TIMEOUT_MS }), { pod });
    }
    pod.stopSent = true;
    await call(s, 'RemovePodSandbox', pod.id, { pod_sandbox_id: pod.id }, () => s.client.runtime.RemovePodSandbox({ pod_sandbox_id: pod.id! }, { timeoutMs: CALL_TIMEOUT_MS }), { pod });
  }
}

/**
 * Runs `workers` workers and kill -9s the daemon (`kill`) at `killAtMs` after the start (or at once when
 * `abort` says so); resolves once every worker has stopped.
 */
export async function runWorkload(s: RoundState, workers: number, roundSeed: number, kill: () => void, abort: () => boolean): Promise<void> {
  s.t0 = Date.now();
  const runs = Array.from({ length: workers }, (_, w) =>
    worker(s, w, deriveSeed(roundSeed, 1000 + w)).catch((err) => {
      if (!(err instanceof Killed)) throw err;
    }),
  );
  while (Date.now() - s.t0 < s.killAtMs && !abort()) await sleep(Math.min(10, Math.max(1, s.killAtMs - (Date.now() - s.t0))));
  s.cut = [...s.inflight.values()];
  s.killed = true;
  s.killAtMs = Date.now() - s.t0;
  kill();
  await Promise.all(runs);
}
