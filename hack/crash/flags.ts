// Command-line flags of the crash suite. Pure: argv in, options out, UsageError on anything wrong.
import { randomInt } from 'node:crypto';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CrashOptions {
  rounds: number;
  seed: number;
  /** Start no new round after this many seconds (the current one finishes). */
  maxSeconds?: number;
  handler: 'berth' | 'runc';
  /** Concurrent kubelet-like workers, each running pods one after another. */
  workers: number;
  /** The kill comes at a seeded moment between these many milliseconds after the workload starts. */
  killMinMs: number;
  killMaxMs: number;
  report?: string;
  /** Copy the daemon logs of rounds with findings here. */
  keepLogs?: string;
  /** Number the first round so (round numbers are part of the per-round seed). */
  firstRound: number;
  help: boolean;
}

export const DEFAULTS = { rounds: 30, workers: 3, killMinMs: 300, killMaxMs: 4000, firstRound: 1 } as const;

export function usage(): string {
  return `usage: npm run crash -- [flags]

Random fault suite: each round starts berthd on the same dirs, runs a kubelet-like mixed workload of pods
and containers, kill -9s berthd at a seeded moment, restarts it, converges as the kubelet would (retry
what was cut, then stop and remove every listed pod), and records invariant violations and leaks.
See docs/crash-consistency.md.

  --rounds N          rounds to run (default ${DEFAULTS.rounds})
  --seed S            seed (a number, decimal or 0x hex; default: random, printed)
  --max-seconds T     start no new round after T seconds
  --handler H         berth or runc (default berth)
  --workers N         concurrent pod workers (default ${DEFAULTS.workers})
  --kill-min-ms MS    earliest kill after the workload starts (default ${DEFAULTS.killMinMs})
  --kill-max-ms MS    latest kill (default ${DEFAULTS.killMaxMs})
  --first-round N     number of the first round (to replay round N of a seed; default 1)
  --report FILE       also write the report as JSON to FILE
  --keep-logs DIR     copy the daemon logs of rounds with findings to DIR
  -h, --help          this text
`;
}

function whole(flag: string, value: string, min: number): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} wants a whole number, not ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be at least ${min}, not ${value}`);
  return n;
}

function seedOf(value: string): number {
  const n = /^0x[0-9a-f]+$/i.test(value) ? parseInt(value.slice(2), 16) : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > 0xffffffff) throw new UsageError(`--seed wants a 32-bit number, not ${JSON.stringify(value)}`);
  return n;
}

const WITH_VALUE = new Set(['--rounds', '--seed', '--max-seconds', '--handler', '--workers', '--kill-min-ms', '--kill-max-ms', '--report', '--keep-logs', '--first-round']);

export function parseFlags(argv: readonly string[]): CrashOptions {
  const o: CrashOptions = { ...DEFAULTS, seed: randomInt(0, 0xffffffff), handler: 'berth', help: false };
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let value: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (flag === '-h' || flag === '--help') {
      o.help = true;
      continue;
    }
    if (!WITH_VALUE.has(flag)) throw new UsageError(`unknown flag ${flag}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`${flag} wants a value`);
    }
    switch (flag) {
      case '--rounds': o.rounds = whole(flag, value, 1); break;
      case '--seed': o.seed = seedOf(value); break;
      case '--max-seconds': o.maxSeconds = whole(flag, value, 1); break;
      case '--handler':
        if (value !== 'berth' && value !== 'runc') throw new UsageError(`--handler is berth or runc, not ${JSON.stringify(value)}`);
        o.handler = value;
        break;
      case '--workers': o.workers = whole(flag, value, 1); break;
      case '--kill-min-ms': o.killMinMs = whole(flag, value, 0); break;
      case '--kill-max-ms': o.killMaxMs = whole(flag, value, 1); break;
      case '--first-round': o.firstRound = whole(flag, value, 1); break;
      case '--report': o.report = value; break;
      case '--keep-logs': o.keepLogs = value; break;
    }
  }
  if (o.killMaxMs < o.killMinMs) throw new UsageError('--kill-max-ms must not be below --kill-min-ms');
  return o;
}
