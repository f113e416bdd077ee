// berth's logger: pino, JSON by default, human-readable when stderr is a terminal (or log_format = "text").
import pino, { type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level: string;
  format: 'auto' | 'json' | 'text' | string;
}

export function createLogger(opts: LogOptions): Logger {
  const text = opts.format === 'text' || (opts.format === 'auto' && process.stderr.isTTY === true);
  const base = { level: opts.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (text) {
    // Loaded only when used: pino-pretty and its dependencies are megabytes a JSON-logging daemon never needs.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true }));
  }
  return pino(base, pino.destination({ dest: 2, sync: true }));
}
