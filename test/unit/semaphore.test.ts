// Semaphore: at most `limit` tasks at once, waiters served in order, a released slot never overtaken.
import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../src/util/mutex';

describe('Semaphore', () => {
  it('runs at most limit tasks at once and serves waiters first come, first served', async () => {
    const sem = new Semaphore(2);
    const started: number[] = [];
    const release: Array<() => void> = [];
    const tasks = [0, 1, 2, 3].map((i) =>
      sem.run(async () => {
        started.push(i);
        await new Promise<void>((r) => release.push(r));
        return i;
      }),
    );
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1]);
    expect(sem.queued).toBe(2);
    // A task asked for after the waiters, as a slot frees, runs after them.
    release[0]();
    const late = sem.run(async () => {
      started.push(9);
      return 9;
    });
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2]);
    release[1]();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2, 3]);
    release[2]();
    release[3]();
    expect(await Promise.all([...tasks, late])).toEqual([0, 1, 2, 3, 9]);
    expect(started).toEqual([0, 1, 2, 3, 9]);
  });

  it('frees the slot of a task that throws', async () => {
    const sem = new Semaphore(1);
    await expect(sem.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await sem.run(async () => 'next')).toBe('next');
    expect(sem.queued).toBe(0);
  });
});
