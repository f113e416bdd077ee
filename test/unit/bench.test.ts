// The pure parts of hack/bench: statistics, the schedule, /proc parsing, flags, the recorder and the runner
// (against fake clients), the text table.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CriClient } from '../../src/client/cri-client';
import { DEFAULTS, parseFlags, UsageError } from '../../hack/bench/flags';
import { accumulate, emptyPeak, mergePeaks, processPatternFor, type MemoryPeak, type Sampler } from '../../hack/bench/memory';
import {
  addressArg,
  findListeningPid,
  listeningInodes,
  parseCmdline,
  parseProcNetUnix,
  parseProcStat,
  parseProcStatus,
  pickServer,
  runtimeProcesses,
  socketInodeOfLink,
  type ProcInfo,
} from '../../hack/bench/proc';
import { isWorkload, orderWorkloads, selectWorkloads } from '../../hack/bench/registry';
import { formatDuration, formatTable } from '../../hack/bench/report';
import { runBenchmark, type EndpointUnderTest } from '../../hack/bench/runner';
import { schedule } from '../../hack/bench/schedule';
import { percentile, ratio, summarize } from '../../hack/bench/stats';
import { defineWorkload, Recorder, RpcFailed, RpcUnimplemented, skipUnimplemented, type Workload } from '../../hack/bench/workload';

describe('bench statistics', () => {
  const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  it('takes percentiles by nearest rank', () => {
    const v = oneTo(100);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 95)).toBe(95);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    const ten = oneTo(10);
    expect(percentile(ten, 50)).toBe(5);
    expect(percentile(ten, 95)).toBe(10); // rank ceil(9.5) = 10
    expect(percentile(ten, 1)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
  });

  it('refuses no samples and percentiles outside (0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it('summarises nanoseconds into microseconds, sorting first', () => {
    const ns = [5000, 1000, 3000, 2000, 4000];
    expect(summarize(ns)).toEqual({ count: 5, p50Us: 3, p95Us: 5, p99Us: 5, meanUs: 3, minUs: 1, maxUs: 5 });
    expect(summarize([])).toBeUndefined();
    expect(ns).toEqual([5000, 1000, 3000, 2000, 4000]); // not sorted in place
  });

  it('takes ratios only of two numbers', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(1, 3)).toBe(0.333);
    expect(ratio(undefined, 2)).toBeUndefined();
    expect(ratio(2, 0)).toBeUndefined();
  });
});

describe('bench schedule', () => {
  const short = (s: ReturnType<typeof schedule>) => s.map((x) => `${x.workload}:${x.side}${x.phase === 'warmup' ? 'w' : x.round}`);

  it('warms up each endpoint, then interleaves A B A B, workload by workload', () => {
    expect(short(schedule(['v', 'l'], ['a', 'b'], 3, true))).toEqual([
      'v:aw', 'v:bw', 'v:a1', 'v:b1', 'v:a2', 'v:b2', 'v:a3', 'v:b3',
      'l:aw', 'l:bw', 'l:a1', 'l:b1', 'l:a2', 'l:b2', 'l:a3', 'l:b3',
    ]);
  });

  it('runs one endpoint alone, and skips the warm-up when asked', () => {
    expect(short(schedule(['v'], ['a'], 2, false))).toEqual(['v:a1', 'v:a2']);
  });

  it('refuses zero rounds', () => {
    expect(() => schedule(['v'], ['a'], 0, true)).toThrow(RangeError);
  });
});

describe('bench /proc parsing', () => {
  const NET_UNIX = [
    'Num       RefCount Protocol Flags    Type St Inode Path',
    '000000002156bb93: 00000003 00000000 00000000 0001 03   523',
    '00000000e4bb56df: 00000002 00000000 00010000 0001 01 24884 /run/peer-containerd/debug.sock',
    '000000001d19f75a: 00000002 00000000 00010000 0001 01 24889 /run/peer-containerd/containerd.sock',
    '000000001d19f75b: 00000003 00000000 00000000 0001 03 24950 /run/peer-containerd/containerd.sock',
    '000000001d19f75c: 00000002 00000000 00010000 0005 01 31000 @abstract-name',
    '000000001d19f75d: 00000002 00000000 00010000 0001 01 31001 /tmp/with space/berth.sock',
    'garbage',
    '',
  ].join('\n');

  it('parses /proc/net/unix lines', () => {
    const entries = parseProcNetUnix(NET_UNIX);
    expect(entries).toHaveLength(6);
    expect(entries[0]).toEqual({ flags: 0, type: 1, state: 3, inode: 523, path: '' });
    expect(entries[2]).toEqual({ flags: 0x10000, type: 1, state: 1, inode: 24889, path: '/run/peer-containerd/containerd.sock' });
    expect(entries[4].path).toBe('@abstract-name');
    expect(entries[5].path).toBe('/tmp/with space/berth.sock');
  });

  it('finds the listening socket of a path, not the connections accepted on it', () => {
    const entries = parseProcNetUnix(NET_UNIX);
    expect(listeningInodes(entries, ['/run/peer-containerd/containerd.sock'])).toEqual([24889]);
    expect(listeningInodes(entries, ['/nope', '/tmp/with space/berth.sock'])).toEqual([31001]);
    expect(listeningInodes(entries, ['/run/peer-containerd'])).toEqual([]);
  });

  it('reads socket inodes out of fd links', () => {
    expect(socketInodeOfLink('socket:[24889]')).toBe(24889);
    expect(socketInodeOfLink('pipe:[24889]')).toBeUndefined();
    expect(socketInodeOfLink('/dev/null')).toBeUndefined();
  });

  it('parses /proc/PID/stat even with parentheses and spaces in the name', () => {
    expect(parseProcStat('11166 (containerd) S 1 11166 11166 0 -1 4194560')).toEqual({ pid: 11166, ppid: 1, comm: 'containerd' });
    expect(parseProcStat('42 (a) b (c)) R 7 42 42 0')).toEqual({ pid: 42, ppid: 7, comm: 'a) b (c)' });
    expect(parseProcStat('nonsense')).toBeUndefined();
  });

  it('parses VmRSS and VmHWM, and nothing for a kernel thread', () => {
    const status = 'Name:\tcontainerd\nVmPeak:\t 1 kB\nVmHWM:\t   38924 kB\nVmRSS:\t   38000 kB\nThreads:\t8\n';
    expect(parseProcStatus(status)).toEqual({ rssKiB: 38000, hwmKiB: 38924 });
    expect(parseProcStatus('Name:\tkthreadd\nThreads:\t1\n')).toBeUndefined();
  });

  it('reads argv and -address out of a command line', () => {
    const argv = parseCmdline('containerd-shim-runc-v2\0-namespace\0k8s.io\0-address\0/run/c.sock\0');
    expect(argv).toEqual(['containerd-shim-runc-v2', '-namespace', 'k8s.io', '-address', '/run/c.sock']);
    expect(addressArg(argv)).toBe('/run/c.sock');
    expect(addressArg(['x', '--address=/a.sock'])).toBe('/a.sock');
    expect(addressArg(['conmon', '-c', 'abc'])).toBeUndefined();
  });

  it('picks the topmost holder of a socket as its server', () => {
    expect(pickServer([{ pid: 20, ppid: 10, comm: 'child' }, { pid: 10, ppid: 1, comm: 'd' }])).toBe(10);
    expect(pickServer([{ pid: 30, ppid: 1, comm: 'x' }, { pid: 10, ppid: 1, comm: 'y' }])).toBe(10);
    expect(pickServer([])).toBeUndefined();
  });

  describe('per-container processes', () => {
    const table: ProcInfo[] = [
      { pid: 1, ppid: 0, comm: 'init' },
      { pid: 100, ppid: 1, comm: 'containerd' },
      { pid: 101, ppid: 100, comm: 'runc' }, // a helper of the daemon: counted
      { pid: 102, ppid: 101, comm: 'runc:[2:INIT]' }, // still below the daemon, no shim in between: counted
      { pid: 200, ppid: 1, comm: 'containerd-shim' }, // our shim, reparented to init: counted
      { pid: 201, ppid: 200, comm: 'pause' }, // the container's own process: not counted
      { pid: 202, ppid: 201, comm: 'nginx' }, // nor its children
      { pid: 300, ppid: 1, comm: 'containerd-shim' }, // another containerd's shim: not counted
      { pid: 400, ppid: 100, comm: 'containerd-shim' }, // a shim still below the daemon: counted once
      { pid: 401, ppid: 400, comm: 'sleep' }, // below that shim: a container process
      { pid: 500, ppid: 1, comm: 'bash' },
    ];
    const cmdlines: Record<number, string[]> = {
      200: ['containerd-shim-runc-v2', '-address', '/run/peer/c.sock'],
      300: ['containerd-shim-runc-v2', '-address', '/run/containerd/containerd.sock'],
      400: ['containerd-shim-runc-v2'],
    };
    const rule = { pattern: new RegExp(processPatternFor('containerd')), socketPaths: ['/run/peer/c.sock'] };

    it('are the daemon descendants and the matching processes, without the containers themselves', () => {
      expect(runtimeProcesses(table, 100, rule, (pid) => cmdlines[pid])).toEqual([101, 102, 200, 400]);
    });

    it('are only the matching processes when the daemon is unknown', () => {
      expect(runtimeProcesses(table, undefined, rule, (pid) => cmdlines[pid])).toEqual([200, 400]);
    });

    it('use a pattern by runtime name, and none for an unknown runtime', () => {
      expect(new RegExp(processPatternFor('berth')).test('berth-monitor')).toBe(true);
      expect(new RegExp(processPatternFor('berth')).test('berth-init')).toBe(true);
      expect(new RegExp(processPatternFor('berth')).test('berth-monitorx')).toBe(false);
      expect(new RegExp(processPatternFor('cri-o')).test('conmon')).toBe(true);
      expect(new RegExp(processPatternFor('whatever')).test('containerd-shim')).toBe(false);
      const none = { pattern: new RegExp(processPatternFor('whatever')), socketPaths: [] };
      expect(runtimeProcesses(table, 100, none, () => undefined)).toEqual([101, 102, 400, 401]);
    });
  });

  describe('the process listening on a socket', () => {
    let server: net.Server | undefined;
    let dir: string | undefined;
    afterEach(async () => {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('is found through /proc/net/unix and /proc/*/fd', async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-proc-'));
      const sock = path.join(dir, 'test.sock');
      server = net.createServer();
      await new Promise<void>((resolve) => server!.listen(sock, resolve));
      const found = findListeningPid(sock);
      expect(found.pid).toBe(process.pid);
      const missing = findListeningPid(path.join(dir, 'nobody.sock'));
      expect(missing.pid).toBeUndefined();
    });
  });
});

describe('bench flags', () => {
  it('has defaults', () => {
    const o = parseFlags([]);
    expect(o).toMatchObject({
      endpoint: 'unix:///run/berth/berth.sock',
      iterations: DEFAULTS.iterations,
      rounds: 2,
      warmup: DEFAULTS.warmup,
      workloads: [],
      labelA: 'berth',
      labelB: 'vs',
      help: false,
    });
    expect(o.vs).toBeUndefined();
    expect(o.json).toBeUndefined();
  });

  it('takes --flag value and --flag=value, and normalises endpoints', () => {
    const o = parseFlags([
      '--endpoint', '/tmp/b.sock', '--vs=unix:///run/c.sock', '--iterations', '50', '--rounds=4', '--warmup', '0',
      '--json', 'out.json', '--label-a', 'A', '--label-b=B', '--timeout-ms', '100', '--procs-b', '^conmon$',
    ]);
    expect(o).toMatchObject({
      endpoint: 'unix:///tmp/b.sock',
      vs: 'unix:///run/c.sock',
      iterations: 50,
      rounds: 4,
      warmup: 0,
      json: 'out.json',
      labelA: 'A',
      labelB: 'B',
      timeoutMs: 100,
      procsB: '^conmon$',
    });
  });

  it('collects --workload, repeated or comma-separated, without duplicates', () => {
    expect(parseFlags(['--workload', 'list', '--workload=version,status', '--workload', 'list']).workloads).toEqual([
      'list',
      'version',
      'status',
    ]);
  });

  it.each([
    [['--bogus'], /unknown flag --bogus/],
    [['stray'], /unexpected argument/],
    [['--iterations'], /needs a value/],
    [['--iterations', 'ten'], /whole number/],
    [['--iterations', '0'], /at least 1/],
    [['--rounds', '-1'], /whole number/],
    [['--endpoint', 'tcp://1.2.3.4:5'], /unsupported CRI endpoint/],
    [['--vs', 'unix:///x', '--label-b', 'berth'], /different names/],
    [['--procs-a', '('], /--procs-a/],
    [['--workload', ','], /wants a name/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseFlags(argv)).toThrow(UsageError);
    expect(() => parseFlags(argv)).toThrow(message);
  });
});

// ---------------------------------------------------------------------------------------------------------

const unimplementedError = () => Object.assign(new Error('12 UNIMPLEMENTED: nope'), { code: 12 });

/** A CRI client whose every unary method answers through `answer(service, method)`. */
function fakeClient(answer: (method: string) => Promise<unknown>, log: string[], tag: string): CriClient {
  const service = () =>
    new Proxy(
      {},
      {
        get: (_t, method) => () => {
          log.push(`${tag}:${String(method)}`);
          return answer(String(method));
        },
      },
    );
  return { runtime: service(), image: service(), rawRuntime: {}, rawImage: {}, close() {} } as unknown as CriClient;
}

describe('bench recorder', () => {
  it('records measured calls only, and remembers what is unimplemented', async () => {
    let t = 0n;
    const rec = new Recorder(() => (t += 1000n));
    rec.beginStep(false);
    await rec.time('Version', async () => 1);
    rec.beginStep(true);
    await rec.time('Version', async () => 1);
    await rec.time('Version', async () => 1);
    expect(rec.samples('Version')).toEqual([1000, 1000]);
    expect(rec.calls).toBe(3);

    let called = 0;
    const unimpl = () => {
      called++;
      return Promise.reject(unimplementedError());
    };
    await expect(rec.time('ListImages', unimpl)).rejects.toBeInstanceOf(RpcUnimplemented);
    await expect(rec.time('ListImages', unimpl)).rejects.toBeInstanceOf(RpcUnimplemented);
    expect(called).toBe(1);
    expect([...rec.unimplemented]).toEqual(['ListImages']);
    await expect(rec.time('Status', () => Promise.reject(new Error('boom')))).rejects.toBeInstanceOf(RpcFailed);
    await expect(Promise.reject(new Error('x')).catch(skipUnimplemented)).rejects.toThrow('x');
  });
});

describe('bench runner', () => {
  const params = { iterations: 3, rounds: 2, warmup: 1, timeoutMs: 1000 };

  const listLike = defineWorkload({
    name: 'list',
    description: 'three independent calls',
    rpcs: ['ListPodSandbox', 'ListContainers', 'ListImages'],
    async run(c, timer, { call }) {
      await timer.time('ListPodSandbox', () => c.runtime.ListPodSandbox({}, call)).catch(skipUnimplemented);
      await timer.time('ListContainers', () => c.runtime.ListContainers({}, call)).catch(skipUnimplemented);
      await timer.time('ListImages', () => c.image.ListImages({}, call)).catch(skipUnimplemented);
    },
  });

  it('interleaves the endpoints, reports UNIMPLEMENTED per RPC and measures the rest', async () => {
    const log: string[] = [];
    const full = fakeClient(async () => ({}), log, 'a');
    const partial = fakeClient(async (m) => (m === 'ListPodSandbox' ? Promise.reject(unimplementedError()) : {}), log, 'b');
    const eps: EndpointUnderTest[] = [
      { side: 'a', label: 'A', endpoint: 'unix:///a', client: full },
      { side: 'b', label: 'B', endpoint: 'unix:///b', client: partial },
    ];
    const [r] = await runBenchmark([listLike], eps, params, { runId: 't' });
    expect(r.sides.a!.status).toBe('ok');
    expect(r.sides.a!.rpcs.ListPodSandbox.summary!.count).toBe(6);
    expect(r.sides.a!.rpcs.ListPodSandbox.rounds).toHaveLength(2);
    expect(r.sides.b!.status).toBe('unimplemented');
    expect(r.sides.b!.unimplemented).toEqual(['ListPodSandbox']);
    expect(r.sides.b!.rpcs.ListPodSandbox).toMatchObject({ status: 'unimplemented', summary: undefined });
    expect(r.sides.b!.rpcs.ListImages.summary!.count).toBe(6);
    expect(Object.keys(r.ratios)).toEqual(['ListContainers', 'ListImages']);
    // B's unimplemented RPC is asked once (in the warm-up), never again.
    expect(log.filter((l) => l === 'b:ListPodSandbox')).toHaveLength(1);
    // Blocks of calls alternate a, b, a, b: warm-up, round 1, round 2.
    const blocks = log.map((l) => l[0]).join('').replace(/(.)\1*/g, '$1');
    expect(blocks).toBe('ababab');
  });

  it('reports a workload whose only RPC is unimplemented, and an endpoint that fails, without crashing', async () => {
    const log: string[] = [];
    const version = defineWorkload({
      name: 'version',
      description: 'v',
      rpcs: ['Version'],
      async run(c, timer, { call }) {
        await timer.time('Version', () => c.runtime.Version({ version: 'v1' }, call));
      },
    });
    const eps: EndpointUnderTest[] = [
      { side: 'a', label: 'A', endpoint: 'unix:///a', client: fakeClient(() => Promise.reject(unimplementedError()), log, 'a') },
      {
        side: 'b',
        label: 'B',
        endpoint: 'unix:///b',
        client: fakeClient(() => Promise.reject(new Error('14 UNAVAILABLE')), log, 'b'),
      },
    ];
    const [r] = await runBenchmark([version], eps, params, { runId: 't' });
    expect(r.sides.a).toMatchObject({ status: 'unimplemented', rpcs: { Version: { status: 'unimplemented' } } });
    expect(r.sides.b!.status).toBe('error');
    expect(r.sides.b!.error).toMatch(/Version: 14 UNAVAILABLE/);
    expect(log).toEqual(['a:Version', 'b:Version']);
    expect(r.ratios).toEqual({});
  });

  it('sets up and tears down once per endpoint, passes the state along, and samples memory while measuring', async () => {
    const events: string[] = [];
    const stateful: Workload<{ id: string }> = {
      name: 'stateful',
      description: 's',
      rpcs: ['Version'],
      async setup(c) {
        events.push('setup');
        return { id: String((c as unknown as { tag: string }).tag) };
      },
      async run(c, timer, ctx) {
        events.push(`run ${ctx.state.id} ${ctx.iteration}`);
        await timer.time('Version', () => c.runtime.Version({}, ctx.call));
      },
      async teardown(_c, ctx) {
        events.push(`teardown ${ctx.state.id} ${ctx.runId}`);
      },
    };
    const client = (tag: string) => Object.assign(fakeClient(async () => ({}), [], tag), { tag });
    let starts = 0;
    const sampler: Sampler = {
      start: () => void starts++,
      stop: async () => accumulate(emptyPeak(), { daemon: { pid: 9, rssKiB: 10 * starts, hwmKiB: 50 }, processes: [] }),
      close: async () => {},
    };
    const memory = { daemonPid: 9, socketPaths: [], pattern: '(?!)' };
    const [r] = await runBenchmark(
      [stateful as Workload],
      [
        { side: 'a', label: 'A', endpoint: 'unix:///a', client: client('x'), memory },
        { side: 'b', label: 'B', endpoint: 'unix:///b', client: client('y') },
      ],
      { iterations: 2, rounds: 1, warmup: 1, timeoutMs: 1000 },
      { runId: 'r', sampler },
    );
    expect(events).toEqual([
      'setup', 'run x 0', 'setup', 'run y 0', // warm-up
      'run x 1', 'run x 2', 'run y 1', 'run y 2', // round 1
      'teardown x r-a', 'teardown y r-b',
    ]);
    expect(starts).toBe(1); // only A has a memory target, and only measured rounds are sampled
    expect(r.sides.a!.memory!.daemon).toEqual({ pid: 9, hwmKiB: 50, rssMaxKiB: 10 });
    expect(r.sides.b!.memory).toBeUndefined();
  });
});

describe('bench memory peaks', () => {
  it('keep the largest of everything', () => {
    const p = emptyPeak();
    const two = [{ rssKiB: 5, hwmKiB: 6 }, { rssKiB: 7, hwmKiB: 9 }];
    accumulate(p, { daemon: { pid: 1, rssKiB: 100, hwmKiB: 120 }, processes: two });
    accumulate(p, { daemon: { pid: 1, rssKiB: 90, hwmKiB: 125 }, processes: [{ rssKiB: 8, hwmKiB: 8 }] });
    const want: MemoryPeak = {
      samples: 2,
      daemon: { pid: 1, hwmKiB: 125, rssMaxKiB: 100 },
      containers: { processesMax: 2, sumRssMaxKiB: 12, perProcessRssMaxKiB: 8, perProcessHwmMaxKiB: 9 },
    };
    expect(p).toEqual(want);
    const q = accumulate(emptyPeak(), { processes: [{ rssKiB: 30, hwmKiB: 31 }] });
    expect(mergePeaks([p, q])).toEqual({
      ...want,
      samples: 3,
      containers: { processesMax: 2, sumRssMaxKiB: 30, perProcessRssMaxKiB: 30, perProcessHwmMaxKiB: 31 },
    });
  });
});

describe('bench workloads and report', () => {
  it('every file in hack/bench/workloads exports a valid workload with a unique name', async () => {
    const dir = path.join(__dirname, '../../hack/bench/workloads');
    const names: string[] = [];
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const mod = (await import(path.join(dir, file))) as { default?: unknown };
      expect(isWorkload(mod.default), file).toBe(true);
      names.push((mod.default as Workload).name);
    }
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['version', 'status', 'list', 'imagefs']));
  });

  it('orders and selects workloads', () => {
    const w = (name: string): Workload => ({ name, description: name, rpcs: ['X'], run: async () => {} });
    const all = orderWorkloads([w('zeta'), w('list'), w('alpha'), w('version')]);
    expect(all.map((x) => x.name)).toEqual(['version', 'list', 'alpha', 'zeta']);
    expect(selectWorkloads(all, ['zeta', 'version']).map((x) => x.name)).toEqual(['zeta', 'version']);
    expect(selectWorkloads(all, []).map((x) => x.name)).toEqual(['version', 'list', 'alpha', 'zeta']);
    expect(() => selectWorkloads(all, ['nope'])).toThrow(/no workload named "nope"/);
    expect(isWorkload({ ...w('x'), rpcs: [] })).toBe(false);
    expect(isWorkload({ ...w('Bad Name') })).toBe(false);
  });

  it('aligns table columns, and spanning text does not widen them', () => {
    const text = formatTable(
      ['name', 'n'],
      [['a', '1'], ['bbb', '100'], { lead: ['c'], span: 'unimplemented' }],
      ['l', 'r'],
    );
    expect(text).toBe(['name    n', 'a       1', 'bbb   100', 'c     unimplemented', ''].join('\n'));
  });

  it('formats durations in a fitting unit', () => {
    expect(formatDuration(87.34)).toBe('87.3µs');
    expect(formatDuration(1234)).toBe('1.23ms');
    expect(formatDuration(2_500_000)).toBe('2.50s');
  });
});
