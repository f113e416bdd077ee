// berthd's event-loop delay histogram, read from its Prometheus /metrics before and after a phase: how often
// and how long the loop was blocked while the load ran.

export interface HistogramSnapshot {
  /** Cumulative counts by upper bound in seconds (+Inf included as Infinity). */
  buckets: Map<number, number>;
  count: number;
  sum: number;
}

/** The histogram `name` out of Prometheus text exposition (labels other than `le` are summed over). */
export function parseHistogram(text: string, name: string): HistogramSnapshot | undefined {
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_bucket{`)) {
      const m = /le="([^"]+)"\}?[^ ]*\s+([0-9.eE+-]+)$/.exec(line);
      if (!m) continue;
      const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
      buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
      seen = true;
    } else if (line.startsWith(`${name}_count`)) {
      count += Number(line.split(/\s+/).pop());
    } else if (line.startsWith(`${name}_sum`)) {
      sum += Number(line.split(/\s+/).pop());
    }
  }
  return seen ? { buckets, count, sum } : undefined;
}

export function histogramDelta(before: HistogramSnapshot, after: HistogramSnapshot): HistogramSnapshot {
  const buckets = new Map<number, number>();
  for (const [le, n] of after.buckets) buckets.set(le, n - (before.buckets.get(le) ?? 0));
  return { buckets, count: after.count - before.count, sum: after.sum - before.sum };
}

/** The upper bound of the bucket holding the p-th percentile (nearest rank), in seconds. */
export function bucketPercentile(h: HistogramSnapshot, p: number): number | undefined {
  if (h.count <= 0) return undefined;
  const rank = Math.ceil((p / 100) * h.count);
  for (const le of [...h.buckets.keys()].sort((a, b) => a - b)) if ((h.buckets.get(le) ?? 0) >= rank) return le;
  return undefined;
}

/** Observations above `bound` seconds (bound must be a bucket's upper bound). */
export function countAbove(h: HistogramSnapshot, bound: number): number | undefined {
  const under = h.buckets.get(bound);
  return under === undefined ? undefined : h.count - under;
}

export async function fetchHistogram(url: string, name: string): Promise<HistogramSnapshot | undefined> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return parseHistogram(await res.text(), name);
}
