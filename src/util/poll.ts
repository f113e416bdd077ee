// Polling for something berthd cannot be told about (a pid file appearing, an exit recorded, a socket
// accepting): the probe runs at once, then after pauses that start short and double up to a cap, since
// most of these things happen within milliseconds and the latency of the first few looks is what
// every CRI call pays.
import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  /** The first pause, in ms (doubling from there). */
  first: number;
  /** The longest pause, in ms; or, given how long the polling has gone on, the longest pause now. */
  max: number | ((elapsedMs: number) => number);
  /** Date.now() after which the last look has been taken; Infinity for none. */
  deadline: number;
}

/** The probe's first value that is not undefined, or undefined once the deadline has passed. The
 * probe's errors end the polling. */
export async function poll<T>(probe: () => Promise<T | undefined> | T | undefined, opts: PollOptions): Promise<T | undefined> {
  const started = Date.now();
  const max = typeof opts.max === 'number' ? () => opts.max as number : opts.max;
  for (let delay = opts.first; ; delay = Math.min(delay * 2, max(Date.now() - started))) {
    const value = await probe();
    if (value !== undefined) return value;
    const left = opts.deadline - Date.now();
    if (left <= 0) return undefined;
    await sleep(Math.max(1, Math.min(delay, left)));
  }
}
