// The CRI traffic of a kubelet at steady state, against one runtime for a fixed time:
// - PLEG relist every second: ListPodSandbox, then ListContainers (no filter);
// - Status every 5 s;
// - stats every 10 s: ListContainerStats, ListPodSandboxStats, ImageFsInfo;
// - pod syncs: ListPodSandbox and ListContainers filtered by the pod's uid label, PodSandboxStatus, then
//   ContainerStatus of each container. Steady: paced (open loop, each sync starts on schedule whether or not
//   the one before has ended, as independent pod workers do). Saturated: N clients in a closed loop.
// A periodic stream skips a tick while its previous round is still running, as the kubelet's loops do.
import type { CriClient } from '../../../src/client/cri-client';
import { POD_UID_LABEL, type BenchPodRef } from './population';

export class Recorder {
  readonly samples = new Map<string, number[]>();
  readonly errors = new Map<string, string[]>();

  async time<T>(rpc: string, call: () => Promise<T>): Promise<T | undefined> {
    const start = process.hrtime.bigint();
    try {
      const out = await call();
      this.push(this.samples, rpc, Number(process.hrtime.bigint() - start));
      return out;
    } catch (err) {
      this.push(this.errors, rpc, (err as Error).message);
      return undefined;
    }
  }

  private push<V>(m: Map<string, V[]>, k: string, v: V): void {
    let list = m.get(k);
    if (!list) m.set(k, (list = []));
    list.push(v);
  }
}

const CALL = { timeoutMs: 30_000 };

/** One pod sync; true when every call of it succeeded. */
export async function podSync(client: CriClient, rec: Recorder, pod: BenchPodRef): Promise<boolean> {
  const selector = { label_selector: { [POD_UID_LABEL]: pod.uid } };
  let ok = (await rec.time('sync ListPodSandbox', () => client.runtime.ListPodSandbox({ filter: selector }, CALL))) !== undefined;
  ok = (await rec.time('sync PodSandboxStatus', () => client.runtime.PodSandboxStatus({ pod_sandbox_id: pod.podId }, CALL))) !== undefined && ok;
  ok = (await rec.time('sync ListContainers', () => client.runtime.ListContainers({ filter: selector }, CALL))) !== undefined && ok;
  for (const id of pod.containerIds) ok = (await rec.time('sync ContainerStatus', () => client.runtime.ContainerStatus({ container_id: id }, CALL))) !== undefined && ok;
  return ok;
}

async function relist(client: CriClient, rec: Recorder): Promise<void> {
  await rec.time('relist ListPodSandbox', () => client.runtime.ListPodSandbox({}, CALL));
  await rec.time('relist ListContainers', () => client.runtime.ListContainers({}, CALL));
}

async function stats(client: CriClient, rec: Recorder): Promise<void> {
  await rec.time('ListContainerStats', () => client.runtime.ListContainerStats({}, CALL));
  await rec.time('ListPodSandboxStats', () => client.runtime.ListPodSandboxStats({}, CALL));
  await rec.time('ImageFsInfo', () => client.image.ImageFsInfo({}, CALL));
}

async function status(client: CriClient, rec: Recorder): Promise<void> {
  await rec.time('Status', () => client.runtime.Status({}, CALL));
}

/** Calls `round` every periodMs (offset by startMs) until `end`, skipping ticks while a round still runs. */
async function periodic(periodMs: number, startMs: number, end: number, round: () => Promise<void>): Promise<void> {
  const t0 = Date.now() + startMs;
  const running: Promise<void>[] = [];
  let busy = false;
  for (let k = 0; ; k++) {
    const at = t0 + k * periodMs;
    if (at >= end) break;
    await sleepUntil(at);
    if (busy) continue;
    busy = true;
    running.push(round().finally(() => (busy = false)));
  }
  await Promise.all(running);
}

const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

export interface LoadResult {
  seconds: number;
  /** Pod syncs whose every call succeeded. */
  syncs: number;
  rec: Recorder;
}

/** The kubelet's periodic background traffic until `end`. */
function background(client: CriClient, rec: Recorder, end: number): Promise<void>[] {
  return [
    periodic(1000, 0, end, () => relist(client, rec)),
    periodic(5000, 250, end, () => status(client, rec)),
    periodic(10_000, 500, end, () => stats(client, rec)),
  ];
}

/** Steady: background traffic plus `syncRate` pod syncs per second, round robin over the pods. */
export async function steadyLoad(client: CriClient, pods: readonly BenchPodRef[], seconds: number, syncRate: number): Promise<LoadResult> {
  const rec = new Recorder();
  const end = Date.now() + seconds * 1000;
  const started = Date.now();
  const syncs: Promise<boolean>[] = [];
  const pacer = (async () => {
    const t0 = Date.now();
    for (let k = 0; ; k++) {
      const at = t0 + (k * 1000) / syncRate;
      if (at >= end) break;
      await sleepUntil(at);
      syncs.push(podSync(client, rec, pods[k % pods.length]));
    }
  })();
  await Promise.all([...background(client, rec, end), pacer]);
  const done = await Promise.all(syncs);
  return { seconds: (Date.now() - started) / 1000, syncs: done.filter(Boolean).length, rec };
}

/** Saturated: background traffic plus `clients` closed loops of pod syncs, each on the next pod. */
export async function saturatedLoad(client: CriClient, pods: readonly BenchPodRef[], seconds: number, clients: number): Promise<LoadResult> {
  const rec = new Recorder();
  const started = Date.now();
  const end = started + seconds * 1000;
  let next = 0;
  let syncs = 0;
  const loop = async (): Promise<void> => {
    while (Date.now() < end) {
      // Only syncs whose every call succeeded count: a runtime that fails fast is not a fast runtime.
      if (await podSync(client, rec, pods[next++ % pods.length])) syncs++;
    }
  };
  await Promise.all([...background(client, rec, end), ...Array.from({ length: clients }, loop)]);
  return { seconds: (Date.now() - started) / 1000, syncs, rec };
}

/** Every read-only call a kubelet or an operator makes, one at a time, `iterations` times each. */
export async function callsOneByOne(client: CriClient, pods: readonly BenchPodRef[], image: string, iterations: number): Promise<Recorder> {
  const rec = new Recorder();
  const pod = (i: number) => pods[i % pods.length];
  const calls: [string, (i: number) => Promise<unknown>][] = [
    ['Version', () => client.runtime.Version({ version: 'v1' }, CALL)],
    ['Status', () => client.runtime.Status({}, CALL)],
    ['ListPodSandbox', () => client.runtime.ListPodSandbox({}, CALL)],
    ['ListPodSandbox (label)', (i) => client.runtime.ListPodSandbox({ filter: { label_selector: { [POD_UID_LABEL]: pod(i).uid } } }, CALL)],
    ['ListPodSandbox (id)', (i) => client.runtime.ListPodSandbox({ filter: { id: pod(i).podId } }, CALL)],
    ['PodSandboxStatus', (i) => client.runtime.PodSandboxStatus({ pod_sandbox_id: pod(i).podId }, CALL)],
    ['ListContainers', () => client.runtime.ListContainers({}, CALL)],
    ['ListContainers (label)', (i) => client.runtime.ListContainers({ filter: { label_selector: { [POD_UID_LABEL]: pod(i).uid } } }, CALL)],
    ['ListContainers (pod)', (i) => client.runtime.ListContainers({ filter: { pod_sandbox_id: pod(i).podId } }, CALL)],
    ['ContainerStatus', (i) => client.runtime.ContainerStatus({ container_id: pod(i).containerIds[0] }, CALL)],
    ['ContainerStats', (i) => client.runtime.ContainerStats({ container_id: pod(i).containerIds[0] }, CALL)],
    ['ListContainerStats', () => client.runtime.ListContainerStats({}, CALL)],
    ['PodSandboxStats', (i) => client.runtime.PodSandboxStats({ pod_sandbox_id: pod(i).podId }, CALL)],
    ['ListPodSandboxStats', () => client.runtime.ListPodSandboxStats({}, CALL)],
    ['ImageStatus', () => client.image.ImageStatus({ image: { image } }, CALL)],
    ['ListImages', () => client.image.ListImages({}, CALL)],
    ['ImageFsInfo', () => client.image.ImageFsInfo({}, CALL)],
  ];
  for (const [name, call] of calls) {
    for (let i = 0; i < iterations; i++) await rec.time(name, () => call(i));
  }
  return rec;
}

/** No calls at all for a while: what the runtime costs with its containers running and nobody asking. */
export async function atRest(seconds: number): Promise<{ seconds: number; rec: Recorder }> {
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return { seconds, rec: new Recorder() };
}
