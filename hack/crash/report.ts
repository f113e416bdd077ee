// The per-round line, the totals, and the JSON report.
import { CATEGORIES, type Category } from './leaks';
import type { Violation } from './workload';

export interface RoundReport {
  round: number;
  seed: string;
  killAtMs: number;
  /** The calls in flight at the kill: method, target, ms since the workload started. */
  inflight: { method: string; target: string; startedMs: number }[];
  calls: number;
  errors: Record<string, number>;
  retried: string[];
  removalRetries: number;
  repairs: Record<string, number>;
  violations: (Violation & { log: string[] })[];
  /** Leaked objects first seen after this round's convergence, by category. */
  leaks: Record<Category, string[]>;
  /** Objects of earlier rounds still there. */
  carried: number;
  leakLog: string[];
  durationMs: number;
}

export interface CrashReport {
  tool: 'berth-crash';
  schema: 1;
  date: string;
  seed: string;
  handler: string;
  workers: number;
  killWindowMs: [number, number];
  roundsRequested: number;
  roundsRun: number;
  durationMs: number;
  stoppedBy: 'rounds' | 'max-seconds' | 'interrupt' | 'fatal';
  fatal?: string;
  totals: {
    violations: number;
    violationsByKind: Record<string, number>;
    leaks: number;
    leaksByCategory: Record<Category, number>;
    roundsWithViolations: number;
    roundsWithLeaks: number;
    calls: number;
    cutByMethod: Record<string, number>;
    repairs: Record<string, number>;
    /** Objects still there at the end, before the scrub. */
    leftAtEnd: number;
  };
  rounds: RoundReport[];
}

export const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

function counts(items: string[]): string {
  const m = new Map<string, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return [...m].map(([k, n]) => (n > 1 ? `${k}×${n}` : k)).join(',');
}

export function roundLine(r: RoundReport): string {
  const leakTotal = CATEGORIES.reduce((n, c) => n + r.leaks[c].length, 0);
  const leakParts = CATEGORIES.filter((c) => r.leaks[c].length).map((c) => `${c} ${r.leaks[c].length}`);
  const v = r.violations.length ? ` [${counts(r.violations.map((x) => x.kind))}]` : '';
  return (
    `round ${String(r.round).padStart(3)}  kill@${(r.killAtMs / 1000).toFixed(2)}s  calls ${String(r.calls).padStart(3)}  ` +
    `in-flight ${r.inflight.length}${r.inflight.length ? ` (${counts(r.inflight.map((c) => c.method))})` : ''}  ` +
    `violations ${r.violations.length}${v}  leaks ${leakTotal}${leakParts.length ? ` (${leakParts.join(', ')})` : ''}` +
    `${r.carried ? `  carried ${r.carried}` : ''}  ${(r.durationMs / 1000).toFixed(1)}s`
  );
}

export function totalsText(rep: CrashReport): string {
  const t = rep.totals;
  const lines = [
    `crash: ${rep.roundsRun} rounds (of ${rep.roundsRequested}) in ${(rep.durationMs / 1000).toFixed(0)} s, seed ${rep.seed}, handler ${rep.handler}, stopped by ${rep.stoppedBy}${rep.fatal ? `: ${rep.fatal}` : ''}`,
    `crash: ${t.calls} calls, cut at the kill: ${Object.entries(t.cutByMethod).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `crash: violations ${t.violations} in ${t.roundsWithViolations} rounds${t.violations ? `: ${Object.entries(t.violationsByKind).map(([k, n]) => `${k} ${n}`).join(', ')}` : ''}`,
    `crash: leaks ${t.leaks} in ${t.roundsWithLeaks} rounds: ${CATEGORIES.map((c) => `${c} ${t.leaksByCategory[c]}`).join(', ')}`,
    `crash: left at the end (before the scrub): ${t.leftAtEnd}`,
    `crash: repairs at restarts: ${Object.entries(t.repairs).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
  ];
  return lines.join('\n') + '\n';
}
