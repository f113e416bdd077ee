// Polling for a condition in tests: every 20 ms until the probe gives a value (anything but undefined
// or false), or an error naming what was awaited once the time is up. The probe may be async (an RPC,
// a connect): each probe is awaited before the next; a probe that throws counts as "not yet" (the last
// error is named in the timeout's message).
import { setTimeout as sleep } from 'node:timers/promises';

type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

export async function until<T>(what: string, probe: Probe<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError === undefined ? '' : ` (last: ${String(lastError)})`}`);
    await sleep(20);
  }
}
