// Counts calls in flight so that shutdown can wait for them (bounded by a timeout).

export class InflightCalls {
  private count = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Marks a call as started; the returned function marks it finished (idempotent). */
  enter(): () => void {
    this.count++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.count--;
      if (this.count === 0) this.waiters.splice(0).forEach((wake) => wake());
    };
  }

  /** Resolves true when no call is in flight, or false once timeoutMs has passed. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
