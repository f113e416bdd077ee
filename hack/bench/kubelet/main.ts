#!/usr/bin/env node
// A kubelet's CRI traffic against one or more runtimes, side by side: `npm run bench:kubelet -- --help`.
// See docs/benchmarks.md ("The kubelet-shaped load").
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectCri, normaliseEndpoint, type CriClient } from '../../../src/client/cri-client';
import { processPatternFor } from '../memory';
import { findListeningPid, readMemory, socketPathVariants } from '../proc';
import { summarize } from '../stats';
import { cpuPercent, cpuSnapshot, ticksBetween, type CpuTarget } from './cpu';
import { atRest, callsOneByOne, saturatedLoad, steadyLoad, type Recorder } from './load';
import { fetchHistogram, histogramDelta, type HistogramSnapshot } from './loop-metric';
import { createPopulation, removePopulation, type BenchPodRef } from './population';
import { formatMarkdown, type KubeletReport, type PhaseResult, type RuntimeInfo } from './report';

const USAGE = `usage: node dist/hack/bench/kubelet/main.js [flags]
  --runtime LABEL=ENDPOINT   a runtime to measure (repeatable; default berth=unix:///run/berth/berth.sock)
  --owner LABEL=TEXT         count only per-container processes whose command line contains TEXT
                             (default for berth: its socket's directory, where its monitors' files live)
  --metrics LABEL=URL        its Prometheus /metrics, for the event-loop delay histogram (berth_event_loop_delay_seconds)
  --image REF                the containers' image (default $BENCH_CONTAINER_IMAGE or 127.0.0.1:5000/busybox:latest)
  --pods N --containers M    the population (default 110 x 2)
  --concurrency N            calls in flight while making and removing it (default 8)
  --phases LIST              rest,steady,saturated,calls (default all four; rest: no calls at all)
  --seconds S                length of each steady and saturated phase per runtime and round (default 60)
  --rounds R                 rounds, runtimes interleaved A B A B (default 2)
  --warmup S                 unmeasured steady load per runtime before the first round (default 10)
  --sync-rate N              steady pod syncs per second (default 11: each of 110 pods every 10 s)
  --clients N                saturated closed-loop clients (default 16)
  --iterations N             calls of each RPC in the calls phase per round (default 200)
  --json FILE                also write the whole result as JSON
  --keep                     leave the pods running at the end
`;

interface Runtime {
  info: RuntimeInfo;
  client: CriClient;
  cpu?: CpuTarget;
  metricsUrl?: string;
  pods: BenchPodRef[];
}

const pairs = (list: string[] | undefined): [string, string][] =>
  (list ?? []).map((s) => {
    const i = s.indexOf('=');
    if (i <= 0) throw new Error(`expected LABEL=VALUE, got ${JSON.stringify(s)}`);
    return [s.slice(0, i), s.slice(i + 1)];
  });

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      runtime: { type: 'string', multiple: true },
      metrics: { type: 'string', multiple: true },
      owner: { type: 'string', multiple: true },
      image: { type: 'string' },
      pods: { type: 'string', default: '110' },
      containers: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '8' },
      phases: { type: 'string', default: 'rest,steady,saturated,calls' },
      seconds: { type: 'string', default: '60' },
      rounds: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '10' },
      'sync-rate': { type: 'string', default: '11' },
      clients: { type: 'string', default: '16' },
      iterations: { type: 'string', default: '200' },
      json: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const num = (k: keyof typeof values): number => {
    const n = Number(values[k]);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${k} wants a positive number, got ${String(values[k])}`);
    return n;
  };
  const phases = String(values.phases).split(',');
  for (const p of phases) if (!['rest', 'steady', 'saturated', 'calls'].includes(p)) throw new Error(`unknown phase ${p}`);
  return {
    help: values.help === true,
    runtimes: values.runtime?.length ? pairs(values.runtime) : [['berth', 'unix:///run/berth/berth.sock'] as [string, string]],
    metrics: new Map(pairs(values.metrics)),
    owners: new Map(pairs(values.owner)),
    image: values.image ?? process.env.BENCH_CONTAINER_IMAGE ?? '127.0.0.1:5000/busybox:latest',
    pods: num('pods'),
    containers: num('containers'),
    concurrency: num('concurrency'),
    phases,
    seconds: num('seconds'),
    rounds: num('rounds'),
    warmup: Number(values.warmup),
    syncRate: num('sync-rate'),
    clients: num('clients'),
    iterations: num('iterations'),
    json: values.json,
    keep: values.keep === true,
  };
}

const log = (line: string) => process.stderr.write(`bench:kubelet: ${line}\n`);

async function connect(label: string, endpoint: string, metricsUrl: string | undefined, owner: string | undefined): Promise<Runtime> {
  const ep = normaliseEndpoint(endpoint);
  const client = connectCri(ep);
  const v = await client.runtime.Version({ version: 'v1' }, { timeoutMs: 10_000 });
  const info: RuntimeInfo = { label, endpoint: ep, name: v.runtime_name, version: v.runtime_version };
  const socketPath = ep.slice('unix://'.length);
  const found = findListeningPid(socketPath);
  const rt: Runtime = { info, client, metricsUrl, pods: [] };
  if (found.pid !== undefined) {
    info.daemonPid = found.pid;
    const cmdlineContains = owner ?? (v.runtime_name === 'berth' ? `${path.dirname(socketPath)}/` : undefined);
    rt.cpu = { daemonPid: found.pid, socketPaths: socketPathVariants(socketPath), pattern: processPatternFor(v.runtime_name), cmdlineContains };
  } else {
    log(`no CPU figures for ${label}: ${found.reason}`);
  }
  return rt;
}

const summaries = (rec: Recorder) =>
  Object.fromEntries([...rec.samples].map(([rpc, s]) => [rpc, summarize(s)]));

const errorCounts = (rec: Recorder) => Object.fromEntries([...rec.errors].map(([rpc, e]) => [rpc, { count: e.length, first: e[0] }]));

async function loopHistogram(rt: Runtime): Promise<HistogramSnapshot | undefined> {
  if (!rt.metricsUrl) return undefined;
  return fetchHistogram(rt.metricsUrl, 'berth_event_loop_delay_seconds').catch((err: Error) => {
    log(`${rt.info.label}: reading ${rt.metricsUrl} failed: ${err.message}`);
    return undefined;
  });
}

/** Runs one phase on one runtime, with its CPU, RSS and event-loop figures around it. */
async function measured(rt: Runtime, run: () => Promise<{ rec: Recorder; seconds: number; syncs?: number }>): Promise<PhaseResult> {
  const loopBefore = await loopHistogram(rt);
  const cpuBefore = rt.cpu ? cpuSnapshot(rt.cpu) : undefined;
  const t0 = process.hrtime.bigint();
  const { rec, syncs } = await run();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuAfter = rt.cpu ? cpuSnapshot(rt.cpu) : undefined;
  const loopAfter = await loopHistogram(rt);
  const result: PhaseResult = { runtime: rt.info.label, seconds, latency: summaries(rec), errors: errorCounts(rec) };
  if (syncs !== undefined) result.syncsPerSecond = syncs / seconds;
  if (cpuBefore && cpuAfter) result.cpuPercent = cpuPercent(ticksBetween(cpuBefore, cpuAfter), seconds);
  if (rt.cpu) result.daemonRssKiB = readMemory(rt.cpu.daemonPid)?.rssKiB;
  if (loopBefore && loopAfter) result.loop = histogramDelta(loopBefore, loopAfter);
  return result;
}

async function main(argv: string[]): Promise<number> {
  const o = parse(argv);
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const runtimes: Runtime[] = [];
  for (const [label, endpoint] of o.runtimes) runtimes.push(await connect(label, endpoint, o.metrics.get(label), o.owners.get(label)));
  const runId = `kl${Date.now().toString(36)}`;
  const report: KubeletReport = {
    tool: 'berth-bench-kubelet',
    date: new Date().toISOString(),
    params: { pods: o.pods, containers: o.containers, seconds: o.seconds, rounds: o.rounds, syncRate: o.syncRate, clients: o.clients, iterations: o.iterations, concurrency: o.concurrency, image: o.image },
    runtimes: runtimes.map((r) => r.info),
    setup: {},
    teardown: {},
    phases: { rest: [], steady: [], saturated: [], calls: [] },
  };
  try {
    for (const rt of runtimes) {
      log(`${rt.info.label}: making ${o.pods} pods x ${o.containers} containers`);
      const t0 = Date.now();
      await createPopulation(rt.client, { pods: o.pods, containersPerPod: o.containers, image: o.image, runId: `${runId}-${rt.info.label}`, concurrency: o.concurrency }, rt.pods);
      report.setup[rt.info.label] = (Date.now() - t0) / 1000;
      log(`${rt.info.label}: made in ${report.setup[rt.info.label]} s`);
    }
    // Code paths compiled and caches filled before anything is measured, on every runtime alike.
    if (o.warmup > 0) {
      for (const rt of runtimes) {
        log(`${rt.info.label}: ${o.warmup} s of unmeasured steady load`);
        await steadyLoad(rt.client, rt.pods, o.warmup, o.syncRate);
      }
    }
    for (let round = 1; round <= o.rounds; round++) {
      for (const phase of o.phases) {
        for (const rt of runtimes) {
          log(`round ${round}: ${phase} on ${rt.info.label}`);
          const r = await measured(rt, async () => {
            if (phase === 'rest') return atRest(o.seconds);
            if (phase === 'steady') return steadyLoad(rt.client, rt.pods, o.seconds, o.syncRate);
            if (phase === 'saturated') return saturatedLoad(rt.client, rt.pods, o.seconds, o.clients);
            return { rec: await callsOneByOne(rt.client, rt.pods, o.image, o.iterations), seconds: 0 };
          });
          report.phases[phase as 'rest' | 'steady' | 'saturated' | 'calls'].push({ ...r, round });
        }
      }
    }
  } finally {
    for (const rt of runtimes) {
      if (!o.keep && rt.pods.length) {
        log(`${rt.info.label}: removing the pods`);
        const t0 = Date.now();
        await removePopulation(rt.client, rt.pods, o.concurrency).catch((err: Error) => log(`${rt.info.label}: teardown failed: ${err.message}`));
        report.teardown[rt.info.label] = (Date.now() - t0) / 1000;
      }
      rt.client.close();
    }
  }
  process.stdout.write(formatMarkdown(report));
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(report, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v === Infinity ? '+Inf' : v), 2) + '\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    log(err.message);
    process.exitCode = 1;
  },
);
