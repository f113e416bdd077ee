#!/usr/bin/env node
// berth's CRI benchmark: `npm run bench -- --help`. See docs/benchmarks.md.
import fs from 'node:fs';
import { connectCri, type CriClient } from '../../src/client/cri-client';
import { parseFlags, usage, UsageError, type BenchOptions } from './flags';
import { processPatternFor, WorkerSampler, type Sampler } from './memory';
import { findListeningPid, socketPathVariants } from './proc';
import { loadWorkloads, selectWorkloads } from './registry';
import { formatText, machineInfo, type BenchReport, type EndpointInfo } from './report';
import { runBenchmark, type EndpointUnderTest } from './runner';
import type { Side } from './schedule';
import { isUnimplemented } from './workload';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

interface Prepared {
  ep: EndpointUnderTest;
  info: EndpointInfo;
}

async function prepare(side: Side, label: string, endpoint: string, procs: string | undefined, o: BenchOptions): Promise<Prepared> {
  const client = connectCri(endpoint);
  const info: EndpointInfo = { label, endpoint, processPattern: '' };
  try {
    const v = await client.runtime.Version({ version: 'v1' }, { timeoutMs: Math.min(o.timeoutMs, 10_000) });
    info.runtimeName = v.runtime_name;
    info.runtimeVersion = v.runtime_version;
    info.runtimeApiVersion = v.runtime_api_version;
  } catch (err) {
    if (!isUnimplemented(err)) {
      client.close();
      throw new Error(`cannot reach ${label} at ${endpoint}: ${(err as Error).message}`);
    }
  }
  info.processPattern = procs ?? processPatternFor(info.runtimeName);
  const socketPath = endpoint.slice('unix://'.length);
  const found = findListeningPid(socketPath);
  const ep: EndpointUnderTest = { side, label, endpoint, client };
  if (found.pid !== undefined) {
    info.daemonPid = found.pid;
    info.daemonComm = found.comm;
    ep.memory = { daemonPid: found.pid, socketPaths: socketPathVariants(socketPath), pattern: info.processPattern };
  } else {
    info.memoryNote = found.reason;
    ep.memoryNote = found.reason;
  }
  return { ep, info };
}

async function main(argv: string[]): Promise<number> {
  const o = parseFlags(argv);
  if (o.help) {
    process.stdout.write(usage());
    return 0;
  }
  const all = loadWorkloads();
  if (o.listWorkloads) {
    for (const w of all) process.stdout.write(`${w.name.padEnd(12)} ${w.description}\n`);
    return 0;
  }
  let workloads;
  try {
    workloads = selectWorkloads(all, o.workloads);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  const prepared: Prepared[] = [];
  let sampler: Sampler | undefined;
  const clients: CriClient[] = [];
  try {
    prepared.push(await prepare('a', o.labelA, o.endpoint, o.procsA, o));
    clients.push(prepared[0].ep.client);
    if (o.vs !== undefined) {
      prepared.push(await prepare('b', o.labelB, o.vs, o.procsB, o));
      clients.push(prepared[1].ep.client);
    }
    for (const p of prepared) {
      if (p.info.memoryNote) process.stderr.write(`bench: no memory figures for ${p.info.label}: ${p.info.memoryNote}\n`);
    }
    if (prepared.some((p) => p.ep.memory)) sampler = new WorkerSampler(o.sampleMs);

    const date = new Date().toISOString();
    const results = await runBenchmark(
      workloads,
      prepared.map((p) => p.ep),
      { iterations: o.iterations, rounds: o.rounds, warmup: o.warmup, timeoutMs: o.timeoutMs },
      {
        sampler,
        runId: `bench-${process.pid}-${Date.now().toString(36)}`,
        progress: (line) => process.stderr.write(`bench: ${line}\n`),
      },
    );
    const report: BenchReport = {
      tool: 'berth-bench',
      schema: 1,
      date,
      machine: machineInfo(),
      params: {
        iterations: o.iterations,
        rounds: o.rounds,
        warmup: o.warmup,
        timeoutMs: o.timeoutMs,
        sampleMs: o.sampleMs,
        workloads: workloads.map((w) => w.name),
        order: 'A B A B',
      },
      units: { latency: 'microseconds', memory: 'KiB' },
      endpoints: Object.fromEntries(prepared.map((p) => [p.ep.side, p.info])),
      workloads: results,
    };
    process.stdout.write(formatText(report));
    if (o.json) {
      fs.writeFileSync(`${o.json}.tmp`, JSON.stringify(report, null, 2) + '\n');
      fs.renameSync(`${o.json}.tmp`, o.json);
      process.stderr.write(`bench: wrote ${o.json}\n`);
    }
    return results.some((w) => Object.values(w.sides).some((s) => s?.status === 'error')) ? EXIT_FAILED : 0;
  } finally {
    for (const c of clients) c.close();
    await sampler?.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n(npm run bench -- --help for the flags)\n`);
      process.exitCode = EXIT_USAGE;
    } else {
      process.stderr.write(`bench: ${err.message}\n`);
      process.exitCode = EXIT_FAILED;
    }
  },
);
