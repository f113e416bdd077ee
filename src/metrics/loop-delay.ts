// How long berthd's event loop was blocked, as a Prometheus histogram, without a timer at rest.
//
// perf_hooks.monitorEventLoopDelay (what prom-client's default collector starts) keeps a 10 ms
// interval timer running for the life of the process: 100 wakeups a second of an otherwise idle
// daemon, most of berthd's CPU at rest. Nothing can block the loop at rest, though: every piece of work
// starts from an event, and what matters to the kubelet is the delay its calls see. So the loop is
// sampled only while CRI calls are in flight: a one-shot timer set `resolutionMs` ahead, rearmed while
// any call is running, records how late it fired (the time the loop was blocked past its due time).
// The last call to end leaves at most one more sample to be taken; then nothing is armed.
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'prom-client';

export class LoopDelaySampler {
  private timer: NodeJS.Timeout | undefined;
  private due = 0;
  private busy = 0;

  constructor(
    private readonly histogram: Histogram<string>,
    private readonly resolutionMs = 10,
  ) {}

  /** Work starts (a CRI call): the loop is sampled until every begin's end has been called. */
  begin(): () => void {
    this.busy++;
    this.arm();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.busy--;
    };
  }

  /** Whether a sample is pending (a timer is set): never the case at rest. */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  private arm(): void {
    if (this.timer) return;
    this.due = performance.now() + this.resolutionMs;
    this.timer = setTimeout(this.tick, this.resolutionMs);
    this.timer.unref();
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    // A timer's start is the loop's cached clock, which may be behind `due`'s: an early firing is no delay.
    this.histogram.observe(Math.max(0, performance.now() - this.due) / 1000);
    if (this.busy > 0) this.arm();
  };

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
