// The kubelet-shaped load's report: Markdown tables, one column per runtime, rounds pooled.
import type { LatencySummary } from '../stats';
import { bucketPercentile, countAbove, type HistogramSnapshot } from './loop-metric';

export interface RuntimeInfo {
  label: string;
  endpoint: string;
  name: string;
  version: string;
  daemonPid?: number;
}

export interface PhaseResult {
  runtime: string;
  round?: number;
  seconds: number;
  latency: Record<string, LatencySummary | undefined>;
  errors: Record<string, { count: number; first: string | undefined }>;
  syncsPerSecond?: number;
  cpuPercent?: number;
  daemonRssKiB?: number;
  loop?: HistogramSnapshot;
}

export interface KubeletReport {
  tool: 'berth-bench-kubelet';
  date: string;
  params: Record<string, number | string>;
  runtimes: RuntimeInfo[];
  /** Seconds to make and to remove the population, per runtime. */
  setup: Record<string, number>;
  teardown: Record<string, number>;
  phases: { rest: PhaseResult[]; steady: PhaseResult[]; saturated: PhaseResult[]; calls: PhaseResult[] };
}

const ms = (us: number | undefined): string => (us === undefined ? '–' : us >= 10_000 ? (us / 1000).toFixed(0) : (us / 1000).toFixed(2));
const mean = (xs: number[]): number | undefined => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
const fixed = (x: number | undefined, d: number): string => (x === undefined ? '–' : x.toFixed(d));

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |\n`;
}

/** p50 / p99 of each RPC over every round: the rounds' samples are not kept, so the worst round's p99 and the
 * median of the rounds' p50 are shown (with the number of calls). */
function pooled(results: PhaseResult[], rpc: string): string {
  const s = results.map((r) => r.latency[rpc]).filter((x): x is LatencySummary => x !== undefined);
  if (!s.length) return '–';
  const p50 = s.map((x) => x.p50Us).sort((a, b) => a - b)[Math.floor((s.length - 1) / 2)];
  const p99 = Math.max(...s.map((x) => x.p99Us));
  const n = s.reduce((a, x) => a + x.count, 0);
  return `${ms(p50)} / ${ms(p99)} (${n})`;
}

function loopCell(results: PhaseResult[]): string {
  const loops = results.map((r) => r.loop).filter((x): x is HistogramSnapshot => x !== undefined);
  if (!loops.length) return '–';
  const p99 = Math.max(...loops.map((h) => bucketPercentile(h, 99) ?? 0));
  const over = loops.reduce((a, h) => a + (countAbove(h, 0.05) ?? 0), 0);
  return `p99 ≤ ${p99 * 1000} ms, ${over} over 50 ms`;
}

function phaseTable(title: string, report: KubeletReport, results: PhaseResult[]): string {
  if (!results.length) return '';
  const labels = report.runtimes.map((r) => r.label);
  const by = (label: string) => results.filter((r) => r.runtime === label);
  const rpcs = [...new Set(results.flatMap((r) => Object.keys(r.latency)))];
  let out = `### ${title}\n\n`;
  out += row(['call: p50 / p99 ms (calls)', ...labels]);
  out += row(['---', ...labels.map(() => '---:')]);
  for (const rpc of rpcs) out += row([rpc, ...labels.map((l) => pooled(by(l), rpc))]);
  if (results.some((r) => r.syncsPerSecond !== undefined)) out += row(['pod syncs per second', ...labels.map((l) => fixed(mean(by(l).flatMap((r) => (r.syncsPerSecond === undefined ? [] : [r.syncsPerSecond]))), 1))]);
  out += row(['CPU, % of a core (runtime processes)', ...labels.map((l) => fixed(mean(by(l).flatMap((r) => (r.cpuPercent === undefined ? [] : [r.cpuPercent]))), 1))]);
  out += row(['daemon RSS after, MiB', ...labels.map((l) => fixed((by(l).at(-1)?.daemonRssKiB ?? NaN) / 1024, 0).replace('NaN', '–'))]);
  out += row(['event loop delay', ...labels.map((l) => loopCell(by(l)))]);
  out += row(['errors', ...labels.map((l) => String(by(l).reduce((a, r) => a + Object.values(r.errors).reduce((b, e) => b + e.count, 0), 0)))]);
  const firstErrors = results.flatMap((r) => Object.entries(r.errors).map(([rpc, e]) => `- ${r.runtime} ${rpc}: ${e.count} × ${e.first ?? ''}`));
  return out + (firstErrors.length ? `\n${firstErrors.join('\n')}\n` : '') + '\n';
}

export function formatMarkdown(report: KubeletReport): string {
  const p = report.params;
  let out = `## Kubelet-shaped load, ${report.date}\n\n`;
  out += `${p.pods} pods x ${p.containers} containers per runtime; ${p.rounds} rounds of ${p.seconds} s per phase and runtime, interleaved; `;
  out += `steady: ${p.syncRate} pod syncs/s + relist 1 s + Status 5 s + stats 10 s; saturated: ${p.clients} closed-loop sync clients + the same background.\n\n`;
  out += report.runtimes.map((r) => `- ${r.label}: ${r.name} ${r.version} at ${r.endpoint}${r.daemonPid ? ` (pid ${r.daemonPid})` : ''}`).join('\n') + '\n\n';
  out += row(['', ...report.runtimes.map((r) => r.label)]) + row(['---', ...report.runtimes.map(() => '---:')]);
  out += row([`set-up of the pods, s (${p.concurrency} in flight)`, ...report.runtimes.map((r) => fixed(report.setup[r.label], 1))]);
  out += row(['tear-down, s', ...report.runtimes.map((r) => fixed(report.teardown[r.label], 1))]) + '\n';
  out += phaseTable('At rest (no calls)', report, report.phases.rest);
  out += phaseTable('Steady', report, report.phases.steady);
  out += phaseTable('Saturated', report, report.phases.saturated);
  out += phaseTable(`One call at a time (${p.iterations} per RPC and round)`, report, report.phases.calls);
  return out;
}
