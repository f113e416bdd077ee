// Serialises async critical sections (record writes) without blocking readers.

export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** One Mutex per key (a pod's or a container's ID): different keys proceed in parallel. */
export class KeyedMutex {
  private readonly mutexes = new Map<string, Mutex>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let m = this.mutexes.get(key);
    if (!m) this.mutexes.set(key, (m = new Mutex()));
    return m.run(fn);
  }

  /** Drops a key that is gone for good (its record was removed). */
  forget(key: string): void {
    this.mutexes.delete(key);
  }
}

/** Joins concurrent calls with the same key into one: the second caller awaits the first's promise. */
export class Singleflight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  get size(): number {
    return this.inflight.size;
  }

  /** The promise of the call in flight for key, if any. */
  running(key: string): Promise<T> | undefined {
    return this.inflight.get(key);
  }

  do(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running) return running;
    const promise = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return promise;
  }
}

/** Limits how many tasks run at once; waiters go in the order they came. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A released slot is handed to the first waiter (active stays), so a newcomer cannot overtake it.
    if (this.active >= this.limit || this.waiting.length > 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }
}
