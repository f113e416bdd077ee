// What start-up reconciliation repairs: each repair is logged and counted in
// berth_recovery_repairs_total{kind}, so an operator sees what a crash left behind.
import type { CounterLike } from '../metrics/registry';
import type { Logger } from 'pino';

export class Repairs {
  constructor(
    private readonly log: Logger,
    private readonly counter?: CounterLike<'kind'>,
  ) {}

  /** Records one repair: `kind` names the object and what was done (e.g. "pod-rolled-back", "netns-orphan"). */
  record(kind: string, details: Record<string, unknown>, message: string): void {
    this.counter?.inc({ kind });
    this.log.warn({ repair: kind, ...details }, message);
  }
}
