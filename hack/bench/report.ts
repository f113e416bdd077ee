// The benchmark's output: an aligned text table for people and a JSON document for machines.
import os from 'node:os';
import type { WorkloadResult } from './runner';
import type { Side } from './schedule';
import type { LatencySummary } from './stats';

export interface EndpointInfo {
  label: string;
  endpoint: string;
  runtimeName?: string;
  runtimeVersion?: string;
  runtimeApiVersion?: string;
  daemonPid?: number;
  daemonComm?: string;
  /** Command-name pattern of the per-container processes. */
  processPattern: string;
  memoryNote?: string;
}

export interface BenchReport {
  tool: 'berth-bench';
  schema: 1;
  date: string;
  machine: {
    cpus: number;
    cpuModel: string;
    kernel: string;
    os: string;
    arch: string;
    node: string;
    totalMemMiB: number;
  };
  params: {
    iterations: number;
    rounds: number;
    warmup: number;
    timeoutMs: number;
    sampleMs: number;
    workloads: string[];
    order: 'A B A B';
  };
  units: { latency: 'microseconds'; memory: 'KiB' };
  endpoints: Partial<Record<Side, EndpointInfo>>;
  workloads: WorkloadResult[];
}

export function machineInfo(): BenchReport['machine'] {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    kernel: os.release(),
    os: `${os.type()} ${os.version()}`,
    arch: os.arch(),
    node: process.version,
    totalMemMiB: Math.round(os.totalmem() / 1024 / 1024),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Text.

type Align = 'l' | 'r';

/** A row of cells, or leading cells followed by free text that runs across the remaining columns. */
export type TableRow = readonly string[] | { readonly lead: readonly string[]; readonly span: string };

/**
 * Pads cells into columns two spaces apart; a row with fewer cells leaves the rest empty. The text of a
 * spanning row starts where its first spanned column starts and does not widen any column.
 */
export function formatTable(header: readonly string[], rows: readonly TableRow[], align: readonly Align[]): string {
  const cellsOf = (r: TableRow) => ('span' in r ? r.lead : r);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (cellsOf(r)[i] ?? '').length)));
  const line = (cells: readonly string[], upTo = widths.length) =>
    widths
      .slice(0, upTo)
      .map((w, i) => {
        const c = cells[i] ?? '';
        return align[i] === 'r' ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ');
  const render = (r: TableRow) => ('span' in r ? `${line(r.lead, r.lead.length)}  ${r.span}` : line(r)).trimEnd();
  return [render(header), ...rows.map(render)].join('\n') + '\n';
}

/** 87.3µs, 1.24ms, 2.50s. */
export function formatDuration(us: number): string {
  if (us < 1000) return `${us.toFixed(1)}µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(2)}ms`;
  return `${(us / 1_000_000).toFixed(2)}s`;
}

export function formatRatio(r: number | undefined): string {
  return r === undefined ? '' : `${r.toFixed(2)}x`;
}

export function formatKiB(kib: number | undefined): string {
  return kib === undefined ? '-' : `${(kib / 1024).toFixed(1)}MiB`;
}

const SIDES: Side[] = ['a', 'b'];

function latencyCells(s: LatencySummary): string[] {
  return [String(s.count), formatDuration(s.p50Us), formatDuration(s.p95Us), formatDuration(s.p99Us), formatDuration(s.meanUs)];
}

export function formatText(report: BenchReport): string {
  const out: string[] = [];
  const p = report.params;
  const eps = SIDES.map((s) => report.endpoints[s]).filter((e): e is EndpointInfo => e !== undefined);
  out.push(
    `berth bench ${report.date}: ${p.rounds} round(s) x ${p.iterations} iterations, ${p.warmup} warm-up, order A B A B; ` +
      `${report.machine.cpus} CPUs, Linux ${report.machine.kernel}, Node ${report.machine.node}`,
  );
  for (const [i, e] of eps.entries()) {
    const runtime = e.runtimeName ? `${e.runtimeName} ${e.runtimeVersion ?? ''}`.trim() : 'runtime unknown';
    const daemon =
      e.daemonPid !== undefined
        ? `daemon pid ${e.daemonPid} (${e.daemonComm ?? '?'})`
        : `daemon not found: ${e.memoryNote ?? '?'}`;
    out.push(`  ${i === 0 ? 'A' : 'B'} = ${e.label}: ${e.endpoint}, ${runtime}, ${daemon}, per-container /${e.processPattern}/`);
  }
  out.push('');

  const labels = Object.fromEntries(SIDES.map((s) => [s, report.endpoints[s]?.label ?? s])) as Record<Side, string>;
  const twoSided = eps.length === 2;
  const header = ['workload', 'rpc', 'runtime', 'n', 'p50', 'p95', 'p99', 'mean'];
  const align: Align[] = ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r'];
  if (twoSided) {
    header.push('p50 A/B', 'p95 A/B');
    align.push('r', 'r');
  }
  const rows: TableRow[] = [];
  for (const w of report.workloads) {
    let first = true;
    for (const rpc of w.rpcs) {
      for (const side of SIDES) {
        const r = w.sides[side];
        if (!r) continue;
        const lead = [first ? w.name : '', side === 'a' || !w.sides.a ? rpc : '', labels[side]];
        first = false;
        const rr = r.rpcs[rpc];
        if (!rr.summary) {
          const why = rr.status === 'unimplemented' ? 'unimplemented' : r.status === 'error' ? 'error (see below)' : 'not run';
          rows.push({ lead, span: why });
          continue;
        }
        const cells = latencyCells(rr.summary);
        if (twoSided && side === 'a') cells.push(formatRatio(w.ratios[rpc]?.p50), formatRatio(w.ratios[rpc]?.p95));
        rows.push([...lead, ...cells]);
      }
    }
  }
  out.push('latency per RPC (sequential calls; ratio < 1 means A is faster)');
  out.push(formatTable(header, rows, align));

  const errors = report.workloads.flatMap((w) =>
    SIDES.flatMap((s) => {
      const r = w.sides[s];
      return r?.error ? [`  ${w.name} on ${labels[s]}: ${r.status}: ${r.error}`] : [];
    }),
  );
  if (errors.length) out.push('problems', ...errors, '');

  const memRows: TableRow[] = [];
  for (const w of report.workloads) {
    for (const side of SIDES) {
      const r = w.sides[side];
      if (!r) continue;
      const m = r.memory;
      if (!m) {
        const why = r.memoryNote ?? report.endpoints[side]?.memoryNote ?? 'nothing measured';
        memRows.push({ lead: [w.name, labels[side]], span: `no figures: ${why}` });
        continue;
      }
      memRows.push([
        w.name,
        labels[side],
        formatKiB(m.daemon?.hwmKiB),
        formatKiB(m.daemon?.rssMaxKiB),
        String(m.containers.processesMax),
        formatKiB(m.containers.sumRssMaxKiB),
        formatKiB(m.containers.perProcessRssMaxKiB),
        String(m.samples),
      ]);
    }
  }
  out.push('memory while measuring (daemon VmHWM is its lifetime peak; per-container processes summed and per process)');
  out.push(
    formatTable(
      ['workload', 'runtime', 'daemon HWM', 'daemon RSS max', 'procs', 'procs RSS sum max', 'RSS max/proc', 'samples'],
      memRows,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  return out.join('\n');
}
