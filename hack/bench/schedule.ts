// The order in which the benchmark runs things: workload by workload; within one, a warm-up on each endpoint,
// then rounds that alternate between the endpoints (A B A B ...), so that whatever drifts during the run (page
// cache, CPU frequency, other load on the machine) drifts under both alike.

export type Side = 'a' | 'b';

export interface Step {
  workload: string;
  side: Side;
  phase: 'warmup' | 'measure';
  /** 0 for the warm-up, 1..rounds for the measured rounds. */
  round: number;
}

export function schedule(workloads: readonly string[], sides: readonly Side[], rounds: number, warmup: boolean): Step[] {
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be a positive integer, not ${rounds}`);
  const steps: Step[] = [];
  for (const workload of workloads) {
    if (warmup) for (const side of sides) steps.push({ workload, side, phase: 'warmup', round: 0 });
    for (let round = 1; round <= rounds; round++) {
      for (const side of sides) steps.push({ workload, side, phase: 'measure', round });
    }
  }
  return steps;
}
