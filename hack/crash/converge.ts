// After the restart: what the kubelet does. First the check that containers did not notice the restart
// (those surely running at the kill still run; those that exited with 3 still say 3), then the cut calls
// retried where the kubelet would retry them, then every listed pod stopped and removed (retried a few
// times), then nothing may be listed any more.
import { status as grpcStatus } from '@grpc/grpc-js';
import type { CriClient } from '../../src/client/cri-client';
import { CALL_TIMEOUT_MS, errCode, errText, isBrokenCode, type Call, type RoundState, type Violation } from './workload';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opts = { timeoutMs: CALL_TIMEOUT_MS };

export interface ConvergeResult {
  violations: Violation[];
  retried: string[];
  /** Pods that needed more than one attempt to go. */
  removalRetries: number;
}

/** Runs a convergence call; INTERNAL/UNKNOWN are violations; returns the error (or undefined on success). */
async function attempt<T>(out: ConvergeResult, what: string, ids: string[], fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (isBrokenCode(err)) out.violations.push({ kind: 'call-failed-internal', detail: `after restart: ${what}: ${errText(err)}`, ids });
    return { ok: false, err };
  }
}

const code = (err: unknown) => (err as { code?: unknown }).code;

/** Containers surely running at the kill (started, sleeping, nothing stopping them) must still run. */
export async function checkContainersUnaffected(s: RoundState, client: CriClient, out: ConvergeResult): Promise<void> {
  for (const pod of s.pods) {
    for (const ctr of pod.ctrs) {
      if (!ctr.id || !ctr.started || ctr.stopSent || pod.stopSent) continue;
      const r = await attempt(out, `ContainerStatus ${ctr.id}`, [ctr.id, pod.id!], () => client.runtime.ContainerStatus({ container_id: ctr.id! }, opts));
      if (!r.ok) {
        if (!isBrokenCode(r.err)) out.violations.push({ kind: 'container-lost', detail: `${ctr.kind} container ${ctr.id} of pod ${pod.id}, running at the kill: ContainerStatus ${errCode(r.err)} ${errText(r.err)}`, ids: [ctr.id, pod.id!] });
        continue;
      }
      const st = r.value.status;
      if (ctr.kind === 'sleep' && st?.state !== 'CONTAINER_RUNNING') {
        out.violations.push({
          kind: 'container-died',
          detail: `sleep container ${ctr.id} of pod ${pod.id}, running at the kill, is ${st?.state} after the restart (exit ${st?.exit_code}, reason ${st?.reason}, ${st?.message})`,
          ids: [ctr.id, pod.id!],
        });
      }
      if (ctr.kind === 'exit3' && st?.state === 'CONTAINER_EXITED' && st.exit_code !== 3) {
        out.violations.push({ kind: 'exit-code-lost', detail: `container ${ctr.id} ran 'exit 3' but reports exit ${st.exit_code} (${st.reason}, ${st.message})`, ids: [ctr.id, pod.id!] });
      }
    }
  }
}

/** The calls the kill cut, retried as the kubelet would (its sync loop repeats what it had not finished). */
async function retryCut(s: RoundState, client: CriClient, out: ConvergeResult): Promise<void> {
  for (const c of s.cut) {
    const ids = [c.target, c.pod?.id ?? '', c.ctr?.id ?? ''].filter(Boolean);
    const what = `${c.method} ${c.target || c.pod?.name || ''} (retry of a cut call)`;
    switch (c.method) {
      case 'RunPodSandbox': {
        const r = await attempt(out, what, ids, () => client.runtime.RunPodSandbox(c.request as never, opts));
        if (r.ok) {
          s.ids.add(r.value.pod_sandbox_id);
          if (c.pod) c.pod.id = r.value.pod_sandbox_id;
        }
        out.retried.push(c.method);
        break;
      }
      case 'CreateContainer': {
        const pod = c.pod!;
        const st = await attempt(out, `PodSandboxStatus ${pod.id}`, ids, () => client.runtime.PodSandboxStatus({ pod_sandbox_id: pod.id! }, opts));
        if (!st.ok || st.value.status?.state !== 'SANDBOX_READY' || pod.stopSent) break;
        const r = await attempt(out, what, ids, () => client.runtime.CreateContainer(c.request as never, opts));
        out.retried.push(c.method);
        if (!r.ok) break;
        s.ids.add(r.value.container_id);
        if (c.ctr) c.ctr.id = r.value.container_id;
        await attempt(out, `StartContainer ${r.value.container_id}`, [...ids, r.value.container_id], () => client.runtime.StartContainer({ container_id: r.value.container_id }, opts));
        break;
      }
      case 'StartContainer': {
        const st = await attempt(out, `ContainerStatus ${c.target}`, ids, () => client.runtime.ContainerStatus({ container_id: c.target }, opts));
        if (st.ok && st.value.status?.state === 'CONTAINER_CREATED' && !c.ctr?.stopSent && !c.ctr?.pod.stopSent) {
          await attempt(out, what, ids, () => client.runtime.StartContainer({ container_id: c.target }, opts));
          out.retried.push(c.method);
        }
        break;
      }
      case 'StopContainer': {
        const r = await attempt(out, what, ids, () => client.runtime.StopContainer(c.request as never, opts));
        out.retried.push(c.method);
        if (!r.ok && code(r.err) !== grpcStatus.NOT_FOUND && !isBrokenCode(r.err)) out.violations.push({ kind: 'retry-failed', detail: `${what}: ${errCode(r.err)} ${errText(r.err)}`, ids });
        break;
      }
      case 'RemoveContainer':
      case 'StopPodSandbox':
      case 'RemovePodSandbox': {
        const fn = (client.runtime[c.method] as (req: unknown, o: typeof opts) => Promise<unknown>).bind(client.runtime);
        const r = await attempt(out, what, ids, () => fn(c.request, opts));
        out.retried.push(c.method);
        // Removing what is gone succeeds; stopping a pod that is gone is NOT_FOUND at most.
        if (!r.ok && !(c.method === 'StopPodSandbox' && code(r.err) === grpcStatus.NOT_FOUND) && !isBrokenCode(r.err)) {
          out.violations.push({ kind: 'retry-failed', detail: `${what}: ${errCode(r.err)} ${errText(r.err)}`, ids });
        }
        break;
      }
      default:
        // ExecSync and ContainerStatus: nothing to finish.
        break;
    }
  }
}

/** Every listed pod stopped and removed, retried; then nothing may be listed. */
async function removeAll(s: RoundState, client: CriClient, out: ConvergeResult): Promise<void> {
  const listed = await attempt(out, 'ListPodSandbox', [], () => client.runtime.ListPodSandbox({}, opts));
  if (!listed.ok) {
    out.violations.push({ kind: 'list-failed', detail: `ListPodSandbox: ${errCode(listed.err)} ${errText(listed.err)}`, ids: [] });
    return;
  }
  const removed: string[] = [];
  for (const p of listed.value.items) {
    s.ids.add(p.id);
    let last: unknown;
    let done = false;
    for (let i = 0; i < 4 && !done; i++) {
      if (i > 0) {
        out.removalRetries++;
        await sleep(300);
      }
      const stop = await attempt(out, `StopPodSandbox ${p.id}`, [p.id], () => client.runtime.StopPodSandbox({ pod_sandbox_id: p.id }, opts));
      if (!stop.ok) last = stop.err;
      const rm = await attempt(out, `RemovePodSandbox ${p.id}`, [p.id], () => client.runtime.RemovePodSandbox({ pod_sandbox_id: p.id }, opts));
      if (rm.ok) done = true;
      else last = rm.err;
    }
    if (done) removed.push(p.id);
    else out.violations.push({ kind: 'pod-unremovable', detail: `pod ${p.id} (${p.metadata?.name}): ${errCode(last)} ${errText(last)}`, ids: [p.id] });
  }
  const again = await attempt(out, 'ListPodSandbox', [], () => client.runtime.ListPodSandbox({}, opts));
  if (again.ok) {
    for (const p of again.value.items) {
      if (removed.includes(p.id)) out.violations.push({ kind: 'pod-listed-after-removal', detail: `pod ${p.id} (${p.metadata?.name}) is listed ${p.state} after RemovePodSandbox succeeded`, ids: [p.id] });
    }
  }
  const ctrs = await attempt(out, 'ListContainers', [], () => client.runtime.ListContainers({}, opts));
  if (ctrs.ok) {
    for (const c of ctrs.value.containers) {
      s.ids.add(c.id);
      if (removed.includes(c.pod_sandbox_id) || !listed.value.items.some((p) => p.id === c.pod_sandbox_id)) {
        out.violations.push({ kind: 'container-after-pod-removal', detail: `container ${c.id} (${c.metadata?.name}, ${c.state}) of pod ${c.pod_sandbox_id} is listed after the pod's removal`, ids: [c.id, c.pod_sandbox_id] });
      }
    }
  }
}

export async function converge(s: RoundState, client: CriClient): Promise<ConvergeResult> {
  const out: ConvergeResult = { violations: [], retried: [], removalRetries: 0 };
  await checkContainersUnaffected(s, client, out);
  await retryCut(s, client, out);
  await removeAll(s, client, out);
  return out;
}

export type { Call };
