// Progress of one pull: per-blob byte counts, a log line at intervals, metrics, and the no-progress
// timeout that cancels a stalled pull (as containerd's image_pull_progress_timeout does).
import type { Logger } from 'pino';
import { DeadlineExceededError } from '../errors';
import type { PullMetrics } from '../metrics/registry';

interface BlobProgress {
  received: number;
  size: number | undefined;
  done: boolean;
}

export interface ProgressOptions {
  image: string;
  log: Logger;
  metrics: PullMetrics;
  logIntervalMs: number;
  /** 0 disables the check. */
  stallTimeoutMs: number;
  abort: AbortController;
}

const short = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

export class PullProgress {
  private readonly blobs = new Map<string, BlobProgress>();
  private lastProgressAt = Date.now();
  private readonly logTimer: NodeJS.Timeout;
  private readonly stallTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ProgressOptions) {
    this.logTimer = setInterval(() => this.logNow(), opts.logIntervalMs);
    this.logTimer.unref();
    if (opts.stallTimeoutMs > 0) {
      this.stallTimer = setInterval(() => this.checkStall(), Math.min(1000, opts.stallTimeoutMs));
      this.stallTimer.unref();
    }
  }

  start(digest: string, size: number | undefined): void {
    this.blobs.set(digest, { received: 0, size, done: false });
    this.lastProgressAt = Date.now();
  }

  add(digest: string, bytes: number): void {
    const blob = this.blobs.get(digest);
    if (blob) blob.received += bytes;
    this.opts.metrics.bytes.inc(bytes);
    this.lastProgressAt = Date.now();
  }

  /** Work that is not download (unpacking a stored blob) also counts as progress. */
  touch(): void {
    this.lastProgressAt = Date.now();
  }

  finish(digest: string): void {
    const blob = this.blobs.get(digest);
    if (blob) blob.done = true;
    this.lastProgressAt = Date.now();
  }

  totalBytes(): number {
    let total = 0;
    for (const b of this.blobs.values()) total += b.received;
    return total;
  }

  private logNow(): void {
    const layers = [...this.blobs].map(([digest, b]) => ({
      digest: short(digest),
      received: b.received,
      size: b.size,
      done: b.done,
    }));
    this.opts.log.info({ image: this.opts.image, received: this.totalBytes(), layers }, 'pulling');
  }

  private checkStall(): void {
    const idleMs = Date.now() - this.lastProgressAt;
    if (idleMs < this.opts.stallTimeoutMs || this.opts.abort.signal.aborted) return;
    const seconds = Math.round(this.opts.stallTimeoutMs / 1000);
    this.opts.abort.abort(
      new DeadlineExceededError(`pull of ${this.opts.image} cancelled: no data received for ${seconds}s`),
    );
  }

  stop(): void {
    clearInterval(this.logTimer);
    if (this.stallTimer) clearInterval(this.stallTimer);
  }
}
