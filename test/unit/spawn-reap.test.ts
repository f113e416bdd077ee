// Monitors (spawnDetached's children) are reaped when SIGCHLD says a child ended, no timer, and their
// end is reported to onAdoptedExit's listeners: how berthd learns at once of a monitor that died.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAdoptedChild, onAdoptedExit, runCommand, spawnDetached, type ProcessEnd } from '../../src/util/spawn';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-reap-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The end of `pid` as onAdoptedExit reports it. */
function endOf(pid: () => number): Promise<ProcessEnd> {
  return new Promise((resolve) => {
    const stop = onAdoptedExit((p, end) => {
      if (p !== pid()) return;
      stop();
      resolve(end);
    });
  });
}

describe('adopted children', () => {
  it('are reaped and reported when they exit', async () => {
    let pid = 0;
    const ended = endOf(() => pid);
    pid = spawnDetached(['/bin/sh', '-c', 'exit 3'], path.join(dir, 'a.err'));
    expect(await ended).toEqual({ code: 3, signal: null });
    expect(isAdoptedChild(pid)).toBe(false);
    expect(fs.existsSync(`/proc/${pid}`) && fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z').toBe(false);
  });

  it('are reaped when killed, while others keep running; helpers are left to runCommand', async () => {
    const other = spawnDetached(['/bin/sleep', '3600'], path.join(dir, 'b.err'));
    let pid = 0;
    const ended = endOf(() => pid);
    pid = spawnDetached(['/bin/sleep', '3600'], path.join(dir, 'c.err'));
    // A helper's SIGCHLD along the way: runCommand still gets its own child's status.
    expect((await runCommand(['/bin/sh', '-c', 'exit 5'])).code).toBe(5);
    expect(isAdoptedChild(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    expect(await ended).toEqual({ code: null, signal: 9 });
    expect(isAdoptedChild(other)).toBe(true);
    const otherEnded = endOf(() => other);
    process.kill(other, 'SIGKILL');
    await otherEnded;
  });
});
