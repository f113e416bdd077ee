// A small seeded PRNG (mulberry32): the same seed gives the same workload plans and kill moments.
export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed of its own for one part (round, worker) of a run, so that each part draws from its own stream. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = seed >>> 0;
  for (const p of parts) {
    h = Math.imul(h ^ (p + 0x9e3779b9 + (h << 6) + (h >>> 2)), 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
  }
  return h >>> 0;
}

export const between = (rng: Rng, lo: number, hi: number) => lo + (hi - lo) * rng();
export const intBetween = (rng: Rng, lo: number, hi: number) => lo + Math.floor((hi - lo + 1) * rng());
export const chance = (rng: Rng, p: number) => rng() < p;
export function pick<T>(rng: Rng, items: readonly T[]): T | undefined {
  return items.length ? items[Math.floor(rng() * items.length)] : undefined;
}
