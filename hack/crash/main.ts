#!/usr/bin/env node
// berth's random fault suite: `npm run crash -- --help`. See docs/crash-consistency.md.
import fs from 'node:fs';
import path from 'node:path';
import { converge } from './converge';
import { startDaemon, StartError, type Daemon } from './daemon';
import { scrub, setUp, type CrashEnv } from './env';
import { parseFlags, usage, UsageError, type CrashOptions } from './flags';
import { CATEGORIES, emptyScan, scan, settledScan, total, type Category, type Scan, type ScanTarget } from './leaks';
import { between, deriveSeed, mulberry32 } from './prng';
import { hex, roundLine, totalsText, type CrashReport, type RoundReport } from './report';
import { runWorkload, type RoundState } from './workload';

const EXIT_BROKEN = 1;
const EXIT_USAGE = 2;
const say = (line: string) => process.stderr.write(`${line}\n`);

let interrupts = 0;
let current: Daemon | undefined;

/** The daemon's log lines about these ids (or its warnings, errors and repairs), short. */
function logLines(text: string, ids: string[], max = 30): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const aboutIds = ids.some((id) => line.includes(id));
    const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
    if (aboutIds || (ids.length === 0 && (level >= 40 || line.includes('"repair"')))) out.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
  }
  return out.slice(-max);
}

function repairsOf(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/"repair":"([^"]+)"/g)) out[m[1]] = (out[m[1]] ?? 0) + 1;
  return out;
}

const idsIn = (items: string[]) => [...new Set(items.flatMap((i) => i.match(/[0-9a-f]{64}/g) ?? []))];

interface Run {
  o: CrashOptions;
  env: CrashEnv;
  args: string[];
  baseline: Scan;
  ids: Set<string>;
  seen: Set<string>;
  target: ScanTarget;
}

class Fatal extends Error {}

async function start(run: Run, logFile: string): Promise<Daemon> {
  try {
    current = await startDaemon(run.env.daemonDir, run.args, logFile);
    return current;
  } catch (err) {
    if (err instanceof StartError) throw new Fatal(err.message);
    throw err;
  }
}

async function round(run: Run, r: number): Promise<RoundReport> {
  const t0 = Date.now();
  const roundSeed = deriveSeed(run.o.seed, r);
  const rng = mulberry32(roundSeed);
  const killAtMs = Math.round(between(rng, run.o.killMinMs, run.o.killMaxMs));
  const logA = path.join(run.env.logDir, `round-${r}-a.log`);
  const logB = path.join(run.env.logDir, `round-${r}-b.log`);
  const a = await start(run, logA);
  const s: RoundState = {
    round: r,
    handler: run.o.handler,
    image: run.env.image,
    logDir: path.join(run.env.logDir, 'pods'),
    client: a.client,
    killed: false,
    killAtMs,
    t0: 0,
    seq: 0,
    inflight: new Map(),
    cut: [],
    pods: [],
    ids: run.ids,
    violations: [],
    errors: {},
    calls: 0,
  };
  await runWorkload(s, run.o.workers, roundSeed, () => process.kill(a.pid, 'SIGKILL'), () => interrupts > 0);
  await a.kill();
  const b = await start(run, logB);
  const conv = await converge(s, b.client);
  const left = await settledScan(run.target, run.baseline);
  const leaks = Object.fromEntries(CATEGORIES.map((c) => [c, left[c].filter((x) => !run.seen.has(`${c}:${x}`))])) as Record<Category, string[]>;
  const carried = total(left) - CATEGORIES.reduce((n, c) => n + leaks[c].length, 0);
  for (const c of CATEGORIES) for (const x of leaks[c]) run.seen.add(`${c}:${x}`);
  await b.stop();
  current = undefined;
  const logs = `${a.log()}\n${b.log()}`;
  const violations = [...s.violations, ...conv.violations].map((v) => ({ ...v, log: logLines(logs, v.ids) }));
  const leakItems = CATEGORIES.flatMap((c) => leaks[c]);
  const rep: RoundReport = {
    round: r,
    seed: hex(roundSeed),
    killAtMs: s.killAtMs,
    inflight: s.cut.map((c) => ({ method: c.method, target: c.target || c.pod?.name || '', startedMs: c.startedMs })),
    calls: s.calls,
    errors: s.errors,
    retried: conv.retried,
    removalRetries: conv.removalRetries,
    repairs: repairsOf(b.log()),
    violations,
    leaks,
    carried,
    leakLog: leakItems.length ? logLines(logs, idsIn(leakItems).length ? idsIn(leakItems) : []) : [],
    durationMs: Date.now() - t0,
  };
  if (run.o.keepLogs && (violations.length || leakItems.length)) {
    fs.mkdirSync(run.o.keepLogs, { recursive: true });
    for (const f of [logA, logB]) fs.copyFileSync(f, path.join(run.o.keepLogs, path.basename(f)));
  }
  // Only rounds with findings keep their logs (in the report, and with --keep-logs).
  fs.rmSync(logA, { force: true });
  fs.rmSync(logB, { force: true });
  return rep;
}

/** After an interrupt or a failure: a daemon on the dirs removes every pod, as far as it can. */
async function drain(run: Run): Promise<void> {
  if (current?.isRunning()) await current.kill();
  current = undefined;
  let d: Daemon | undefined;
  try {
    d = await startDaemon(run.env.daemonDir, run.args, path.join(run.env.logDir, 'drain.log'), 20_000);
    current = d;
    for (const p of (await d.client.runtime.ListPodSandbox({}, { timeoutMs: 10_000 })).items) {
      run.ids.add(p.id);
      await d.client.runtime.StopPodSandbox({ pod_sandbox_id: p.id }, { timeoutMs: 20_000 }).catch(() => undefined);
      await d.client.runtime.RemovePodSandbox({ pod_sandbox_id: p.id }, { timeoutMs: 20_000 }).catch(() => undefined);
    }
  } catch (err) {
    say(`crash: drain: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await d?.stop(10_000);
    current = undefined;
  }
}

async function main(argv: string[]): Promise<number> {
  const o = parseFlags(argv);
  if (o.help) {
    process.stdout.write(usage());
    return 0;
  }
  say(`crash: seed ${hex(o.seed)} (--seed ${hex(o.seed)}), ${o.rounds} rounds, handler ${o.handler}, ${o.workers} workers, kill between ${o.killMinMs} and ${o.killMaxMs} ms`);
  const onSignal = (sig: string) => {
    interrupts++;
    say(`crash: ${sig}: ${interrupts === 1 ? 'stopping after this round (the kill comes now), then cleaning up' : 'cleaning up now'}`);
    if (interrupts > 1 && current?.isRunning()) process.kill(current.pid, 'SIGKILL');
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  const started = Date.now();
  const env = await setUp();
  const run: Run = {
    o,
    env,
    args: ['--cni-conf-dir', env.network!.confDir],
    baseline: emptyScan(),
    ids: new Set(),
    seen: new Set(),
    target: { dir: env.daemonDir, root: path.join(env.daemonDir, 'root'), state: path.join(env.daemonDir, 'state'), bridge: env.network!.bridge, ipamDir: env.ipamDir, tmpDir: path.join(env.daemonDir, 'tmp'), ids: new Set() },
  };
  run.target.ids = run.ids;
  const report: CrashReport = {
    tool: 'berth-crash',
    schema: 1,
    date: new Date(started).toISOString(),
    seed: hex(o.seed),
    handler: o.handler,
    workers: o.workers,
    killWindowMs: [o.killMinMs, o.killMaxMs],
    roundsRequested: o.rounds,
    roundsRun: 0,
    durationMs: 0,
    stoppedBy: 'rounds',
    totals: {
      violations: 0,
      violationsByKind: {},
      leaks: 0,
      leaksByCategory: Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>,
      roundsWithViolations: 0,
      roundsWithLeaks: 0,
      calls: 0,
      cutByMethod: {},
      repairs: {},
      leftAtEnd: 0,
    },
    rounds: [],
  };
  let broken: unknown;
  try {
    // Once: the image pulled into berthd's store, and the baseline of what an idle berthd has.
    const d = await start(run, path.join(env.logDir, 'setup.log'));
    await d.client.image.PullImage({ image: { image: env.image } }, { timeoutMs: 120_000 });
    await d.stop();
    current = undefined;
    run.baseline = scan(run.target);
    for (let r = o.firstRound; r < o.firstRound + o.rounds; r++) {
      if (interrupts > 0) {
        report.stoppedBy = 'interrupt';
        break;
      }
      if (o.maxSeconds !== undefined && Date.now() - started >= o.maxSeconds * 1000) {
        report.stoppedBy = 'max-seconds';
        break;
      }
      const rep = await round(run, r);
      report.rounds.push(rep);
      report.roundsRun++;
      const t = report.totals;
      t.calls += rep.calls;
      for (const c of rep.inflight) t.cutByMethod[c.method] = (t.cutByMethod[c.method] ?? 0) + 1;
      for (const [k, n] of Object.entries(rep.repairs)) t.repairs[k] = (t.repairs[k] ?? 0) + n;
      for (const v of rep.violations) t.violationsByKind[v.kind] = (t.violationsByKind[v.kind] ?? 0) + 1;
      t.violations += rep.violations.length;
      if (rep.violations.length) t.roundsWithViolations++;
      let leaked = 0;
      for (const c of CATEGORIES) {
        t.leaksByCategory[c] += rep.leaks[c].length;
        leaked += rep.leaks[c].length;
      }
      t.leaks += leaked;
      if (leaked) t.roundsWithLeaks++;
      process.stdout.write(`${roundLine(rep)}\n`);
      for (const v of rep.violations) say(`  VIOLATION ${v.kind}: ${v.detail}`);
      for (const c of CATEGORIES) for (const x of rep.leaks[c]) say(`  LEAK ${c}: ${x}`);
      if (interrupts > 0 && r + 1 < o.firstRound + o.rounds) report.stoppedBy = 'interrupt';
    }
  } catch (err) {
    if (err instanceof Fatal) {
      report.stoppedBy = 'fatal';
      report.fatal = err.message;
      report.totals.violations++;
      report.totals.violationsByKind['berthd-start-failed'] = (report.totals.violationsByKind['berthd-start-failed'] ?? 0) + 1;
      say(`crash: VIOLATION berthd-start-failed: ${err.message}`);
    } else {
      broken = err;
    }
  } finally {
    if (broken !== undefined || report.stoppedBy === 'fatal' || interrupts > 0 || current) await drain(run);
    report.totals.leftAtEnd = total(scan(run.target)) - total(run.baseline);
    await scrub(env, run.ids, say);
    report.durationMs = Date.now() - started;
    process.stdout.write(totalsText(report));
    if (o.report) {
      fs.mkdirSync(path.dirname(path.resolve(o.report)), { recursive: true });
      fs.writeFileSync(`${o.report}.tmp`, JSON.stringify(report, null, 2) + '\n');
      fs.renameSync(`${o.report}.tmp`, o.report);
      say(`crash: wrote ${o.report}`);
    }
  }
  if (broken !== undefined) throw broken;
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    if (err instanceof UsageError) {
      say(`crash: ${err.message}\n(npm run crash -- --help for the flags)`);
      process.exitCode = EXIT_USAGE;
    } else {
      say(`crash: the tool broke: ${err.stack ?? err.message}`);
      process.exitCode = EXIT_BROKEN;
    }
  },
);
