// The C unit tests of native/ (make -C native test: common utilities, berth-runtime's cgroup naming and
// delegation rules), run as part of the suite so that CI sees them.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/util/package-root';

describe('native C unit tests', () => {
  it('pass (make -C native test)', () => {
    const out = execFileSync('make', ['-s', '-C', path.join(packageRoot(), 'native'), 'test'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toMatch(/test_cgroups: ok/);
  }, 120_000);
});
