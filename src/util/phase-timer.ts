// Milliseconds spent in each phase of a long operation, for its log line (where the time goes).
export class PhaseTimer {
  private last = process.hrtime.bigint();
  private readonly phases: Record<string, number> = {};

  mark(phase: string): void {
    const now = process.hrtime.bigint();
    this.phases[phase] = Number(now - this.last) / 1e6;
    this.last = now;
  }

  /** Times one of several things running at once, on its own clock (the marks go on around it). */
  async span<T>(phase: string, work: Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    try {
      return await work;
    } finally {
      this.phases[phase] = Number(process.hrtime.bigint() - start) / 1e6;
    }
  }

  result(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.phases).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  }
}
