// Single-use tokens for registered requests, as the kubelet's request cache: a token names one request,
// is removed by its first use, and is worthless after its time to live.
import { randomBytes } from 'node:crypto';
import { ResourceExhaustedError } from '../errors';

interface Entry<T> {
  value: T;
  expiresAt: number;
}

export class TokenCache<T> {
  // A Map iterates in insertion order, and every entry has the same TTL: the oldest come first.
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxInFlight: number,
    private readonly now: () => number = Date.now,
  ) {}

  insert(value: T): string {
    this.collect();
    if (this.entries.size >= this.maxInFlight) {
      throw new ResourceExhaustedError(`too many streaming requests in flight (${this.maxInFlight}); try again later`);
    }
    // 128 random bits: the kubelet's 8 characters (48 bits) are guessable by a patient client.
    let token = randomBytes(16).toString('base64url');
    while (this.entries.has(token)) token = randomBytes(16).toString('base64url');
    this.entries.set(token, { value, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  /** Removes the token and returns its request, unless it is unknown or expired. */
  consume(token: string): T | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    return this.now() > entry.expiresAt ? undefined : entry.value;
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private collect(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) {
      if (now <= entry.expiresAt) return;
      this.entries.delete(token);
    }
  }
}
