// Polling for something berthd cannot be told about (a pid file appearing, an exit recorded, a socket
// accepting): the probe runs at once, then after pauses that start short and double up to a cap, since
// most of these things happen within milliseconds and the latency of the first few looks is what
// every CRI call pays.
import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  /** The first pause, in ms (doubling from there). */
  first: number;
  /** The longest pause, in ms. */
  max: number;
  /** Date.now() after which the last look has been taken; Infinity for none. */
  deadline: number;
}

/** The probe's first value that is not undefined, or undefined once the deadline has passed. The
 * probe's errors end the polling. */
export async function poll<T>(probe: () => Promise<T | undefined> | T | undefined, opts: PollOptions): Promise<T | undefined> {
  for (let delay = opts.first; ; delay = Math.min(delay * 2, opts.max)) {
    const value = await probe();
    if (value !== undefined) return value;
    const left = opts.deadline - Date.now();
    if (left <= 0) return undefined;
    await sleep(Math.max(1, Math.min(delay, left)));
  }
}
