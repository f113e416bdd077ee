// Failpoints: named places between side effects where a test can make berthd die, as `kill -9` would,
// to prove that start-up reconciliation repairs every window. Compiled in always; with
// BERTH_FAILPOINTS unset a failpoint is one Map lookup on an empty map.
//
//   BERTH_FAILPOINTS=pod.after-netns=crash,container.after-mount=error
//
// crash: SIGKILL berthd itself at once (nothing flushed, no handler runs).
// error: throw, as a failed step would (the call's own rollback runs).

export type FailpointAction = 'crash' | 'error';

export class FailpointError extends Error {}

function parse(spec: string | undefined): Map<string, FailpointAction> {
  const out = new Map<string, FailpointAction>();
  for (const item of (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, action = 'crash'] = item.split('=');
    if (action !== 'crash' && action !== 'error') throw new Error(`BERTH_FAILPOINTS: ${item}: the action is crash or error`);
    out.set(name, action);
  }
  return out;
}

const active = parse(process.env.BERTH_FAILPOINTS);

export function failpoint(name: string): void {
  const action = active.get(name);
  if (action === undefined) return;
  if (action === 'error') throw new FailpointError(`failpoint ${name}`);
  process.kill(process.pid, 'SIGKILL');
}
