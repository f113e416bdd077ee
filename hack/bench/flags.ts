// Command-line flags of the benchmark. Pure: argv in, options out, UsageError on anything wrong.
import { normaliseEndpoint } from '../../src/client/cri-client';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface BenchOptions {
  /** CRI endpoint A, normalised to unix:///path. */
  endpoint: string;
  /** CRI endpoint B to compare with, if any. */
  vs?: string;
  /** Iterations of a workload per round (and endpoint). */
  iterations: number;
  /** Measured rounds per workload and endpoint, interleaved A B A B. */
  rounds: number;
  /** Unmeasured iterations per workload and endpoint before the first round. */
  warmup: number;
  /** Workload names in the order given; empty means all. */
  workloads: string[];
  /** Also write the result as JSON here. */
  json?: string;
  labelA: string;
  labelB: string;
  /** Deadline of a single RPC. */
  timeoutMs: number;
  /** Interval of the memory sampler. */
  sampleMs: number;
  /** Overrides of the per-container process pattern (a regular expression on the command name). */
  procsA?: string;
  procsB?: string;
  help: boolean;
  listWorkloads: boolean;
}

export const DEFAULTS = {
  endpoint: 'unix:///run/berth/berth.sock',
  iterations: 200,
  rounds: 2,
  warmup: 20,
  labelA: 'berth',
  labelB: 'vs',
  timeoutMs: 30_000,
  sampleMs: 100,
} as const;

export function usage(): string {
  return `usage: npm run bench -- [flags]

Drives one CRI endpoint, or two to compare them, through a set of workloads and reports per-RPC latency
(count, p50, p95, p99, mean; A/B ratios of p50 and p95) and the peak memory of each runtime's daemon and
per-container processes.

  --endpoint ENDPOINT   endpoint A (default ${DEFAULTS.endpoint})
  --vs ENDPOINT         endpoint B to compare with, e.g. unix:///run/peer-containerd/containerd.sock
  --iterations N        iterations of a workload per round and endpoint (default ${DEFAULTS.iterations})
  --rounds R            measured rounds, interleaved A B A B (default ${DEFAULTS.rounds})
  --warmup N            unmeasured iterations per workload and endpoint first (default ${DEFAULTS.warmup})
  --workload NAME       run only this workload; repeatable, or comma-separated (default: all)
  --json FILE           also write the result as JSON to FILE
  --label-a NAME        name of endpoint A in the report (default ${DEFAULTS.labelA})
  --label-b NAME        name of endpoint B in the report (default ${DEFAULTS.labelB})
  --timeout-ms MS       deadline of one RPC (default ${DEFAULTS.timeoutMs})
  --sample-ms MS        memory sampling interval (default ${DEFAULTS.sampleMs})
  --procs-a REGEX       command-name pattern of A's per-container processes (default: by runtime name)
  --procs-b REGEX       the same for B
  --list                list the workloads and exit
  -h, --help            this text
`;
}

function positiveInt(flag: string, value: string, allowZero = false): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} wants a whole number, not ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < (allowZero ? 0 : 1)) {
    throw new UsageError(`${flag} must be ${allowZero ? 'at least 0' : 'at least 1'}, not ${value}`);
  }
  return n;
}

function endpointOf(flag: string, value: string): string {
  try {
    return normaliseEndpoint(value);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

function regexOf(flag: string, value: string): string {
  try {
    new RegExp(value);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
  return value;
}

function label(flag: string, value: string): string {
  if (!value.trim()) throw new UsageError(`${flag} must not be empty`);
  return value;
}

const WITH_VALUE = new Set([
  '--endpoint',
  '--vs',
  '--iterations',
  '--rounds',
  '--warmup',
  '--workload',
  '--json',
  '--label-a',
  '--label-b',
  '--timeout-ms',
  '--sample-ms',
  '--procs-a',
  '--procs-b',
]);

/** Parses `--flag value` and `--flag=value` forms. */
export function parseFlags(argv: readonly string[]): BenchOptions {
  const o: BenchOptions = {
    endpoint: DEFAULTS.endpoint,
    iterations: DEFAULTS.iterations,
    rounds: DEFAULTS.rounds,
    warmup: DEFAULTS.warmup,
    workloads: [],
    labelA: DEFAULTS.labelA,
    labelB: DEFAULTS.labelB,
    timeoutMs: DEFAULTS.timeoutMs,
    sampleMs: DEFAULTS.sampleMs,
    help: false,
    listWorkloads: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      o.help = true;
      continue;
    }
    if (arg === '--list') {
      o.listWorkloads = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!WITH_VALUE.has(flag)) {
      throw new UsageError(arg.startsWith('-') ? `unknown flag ${flag}` : `unexpected argument ${JSON.stringify(arg)}`);
    }
    let value: string;
    if (flag !== arg) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value`);
      value = argv[++i];
    }
    switch (flag) {
      case '--endpoint':
        o.endpoint = endpointOf(flag, value);
        break;
      case '--vs':
        o.vs = endpointOf(flag, value);
        break;
      case '--iterations':
        o.iterations = positiveInt(flag, value);
        break;
      case '--rounds':
        o.rounds = positiveInt(flag, value);
        break;
      case '--warmup':
        o.warmup = positiveInt(flag, value, true);
        break;
      case '--workload':
        for (const name of value.split(',').map((s) => s.trim())) {
          if (!name) throw new UsageError(`--workload wants a name`);
          if (!o.workloads.includes(name)) o.workloads.push(name);
        }
        break;
      case '--json':
        if (!value) throw new UsageError('--json wants a file name');
        o.json = value;
        break;
      case '--label-a':
        o.labelA = label(flag, value);
        break;
      case '--label-b':
        o.labelB = label(flag, value);
        break;
      case '--timeout-ms':
        o.timeoutMs = positiveInt(flag, value);
        break;
      case '--sample-ms':
        o.sampleMs = positiveInt(flag, value);
        break;
      case '--procs-a':
        o.procsA = regexOf(flag, value);
        break;
      case '--procs-b':
        o.procsB = regexOf(flag, value);
        break;
    }
  }
  if (o.vs !== undefined && o.labelA === o.labelB) {
    throw new UsageError(`--label-a and --label-b are both ${JSON.stringify(o.labelA)}; give them different names`);
  }
  return o;
}
