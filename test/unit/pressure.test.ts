import { describe, expect, it } from 'vitest';
import { parsePressure } from '../../src/container/stats';

describe('cgroup v2 pressure files', () => {
  it('reads some and full lines, totals turned from microseconds into nanoseconds', () => {
    const p = parsePressure('some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n');
    expect(p).toEqual({ some: { total: 1_234_000n, avg10: 1.5, avg60: 0.25, avg300: 0 }, full: { total: 7000n, avg10: 0, avg60: 0, avg300: 0 } });
  });

  it('cpu.pressure on older kernels has no full line; an empty or broken file is no PSI', () => {
    expect(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n')).toEqual({ some: { total: 0n, avg10: 0, avg60: 0, avg300: 0 } });
    expect(parsePressure('')).toBeUndefined();
    expect(parsePressure('some avg10=x total=abc\n')).toBeUndefined();
  });
});
