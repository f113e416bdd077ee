#!/usr/bin/env node
// Summarises `critest -benchmark` runs of several runtimes as one markdown table (docs/benchmarks.md).
// critest writes one JSON file per lifecycle benchmark into its -benchmarking-output-dir; the "start a
// container from scratch" spec writes none and only prints its duration, so a run's log (DIR.log, critest's
// output) is read for it when present. Several directories of one runtime are pooled.
//   node dist/hack/bench/critest-summary.js berth=OUT1,OUT2 containerd=OUT3,OUT4
import fs from 'node:fs';
import path from 'node:path';
import { percentile } from './stats';

interface LifecycleResults {
  operationsNames: string[];
  datapoints: { operationsDurationsNs: number[] }[];
}

const BENCHMARKS = ['pod', 'container', 'image_lifecycle', 'image_listing'] as const;
const FROM_SCRATCH = /create PodSandbox and container \[duration\] \| 1 \| ([\d.]+)(ms|s)/;

/** Durations in ms by "benchmark / operation", pooled over a runtime's output directories. */
function durations(dirs: string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const add = (key: string, ms: number) => out.set(key, [...(out.get(key) ?? []), ms]);
  for (const dir of dirs) {
    for (const bench of BENCHMARKS) {
      const file = path.join(dir, `${bench}_benchmark_data.json`);
      if (!fs.existsSync(file)) continue;
      const results = JSON.parse(fs.readFileSync(file, 'utf8')) as LifecycleResults;
      for (const point of results.datapoints)
        point.operationsDurationsNs.forEach((ns, i) => add(`${bench} / ${results.operationsNames[i]}`, ns / 1e6));
    }
    const log = `${dir.replace(/\/+$/, '')}.log`;
    const match = fs.existsSync(log) ? FROM_SCRATCH.exec(fs.readFileSync(log, 'utf8')) : null;
    if (match) add('from scratch / RunPodSandbox+CreateContainer+StartContainer', Number(match[1]) * (match[2] === 's' ? 1000 : 1));
  }
  return out;
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

function main(argv: string[]): void {
  if (!argv.length || argv.some((a) => !a.includes('='))) {
    process.stderr.write('usage: critest-summary LABEL=DIR[,DIR...] ...\n');
    process.exit(2);
  }
  const runtimes = argv.map((a) => {
    const [label, dirs] = a.split(/=(.*)/s);
    return { label, data: durations(dirs.split(',')) };
  });
  const keys = [...new Set(runtimes.flatMap((r) => [...r.data.keys()]))];
  const lines = [
    `| benchmark / operation | ${runtimes.map((r) => `${r.label} p50 / p95 ms (n)`).join(' | ')} |`,
    `| --- | ${runtimes.map(() => '---:').join(' | ')} |`,
  ];
  for (const key of keys) {
    const cells = runtimes.map(({ data }) => {
      const ms = [...(data.get(key) ?? [])].sort((a, b) => a - b);
      return ms.length ? `${fmt(percentile(ms, 50))} / ${fmt(percentile(ms, 95))} (${ms.length})` : '–';
    });
    lines.push(`| ${key} | ${cells.join(' | ')} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main(process.argv.slice(2));
