// Latency statistics over samples in nanoseconds.

/**
 * The p-th percentile (0 < p ≤ 100) of ascending-sorted values by the nearest-rank method: the smallest value
 * such that at least p% of the values are ≤ it. Always one of the samples, never an interpolation.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) throw new RangeError('percentile of no samples');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside (0, 100]`);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export interface LatencySummary {
  count: number;
  /** Microseconds. */
  p50Us: number;
  p95Us: number;
  p99Us: number;
  meanUs: number;
  minUs: number;
  maxUs: number;
}

const us = (ns: number) => Math.round(ns) / 1000;

/** Summarises latencies given in nanoseconds; undefined for no samples. */
export function summarize(samplesNs: readonly number[]): LatencySummary | undefined {
  if (!samplesNs.length) return undefined;
  const sorted = [...samplesNs].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    p50Us: us(percentile(sorted, 50)),
    p95Us: us(percentile(sorted, 95)),
    p99Us: us(percentile(sorted, 99)),
    meanUs: us(sum / sorted.length),
    minUs: us(sorted[0]),
    maxUs: us(sorted[sorted.length - 1]),
  };
}

/** a / b, rounded to 3 decimals; undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || b === 0) return undefined;
  return Math.round((a / b) * 1000) / 1000;
}
