// The event bus behind GetContainerEvents: transitions from record changes, fan-out to every
// subscriber, and a subscriber that falls too far behind ended instead of growing without bound.
import { describe, expect, it } from 'vitest';
import { ContainerEvents, MAX_QUEUED_EVENTS, SubscriberTooSlowError, transitions } from '../../src/container/container-events';

describe('container events', () => {
  it('derives the events of a record change', () => {
    expect(transitions(undefined, { state: 'created' })).toEqual(['created']);
    expect(transitions(undefined, { state: 'running' })).toEqual(['created', 'started']);
    expect(transitions({ state: 'created' }, { state: 'running' })).toEqual(['started']);
    expect(transitions({ state: 'running' }, { state: 'running' })).toEqual([]);
    expect(transitions({ state: 'running' }, { state: 'exited' })).toEqual(['stopped']);
    expect(transitions({ state: 'created' }, { state: 'exited' })).toEqual(['stopped']);
    expect(transitions({ state: 'exited' }, undefined)).toEqual(['deleted']);
    expect(transitions(undefined, undefined)).toEqual([]);
  });

  it('tells each subscriber every event in order, and forgets one that is closed', async () => {
    const bus = new ContainerEvents();
    const a = bus.subscribe();
    const b = bus.subscribe();
    bus.publish({ type: 'created', containerId: 'c1', podId: 'p' });
    bus.publish({ type: 'started', containerId: 'c1', podId: 'p' });
    b.close();
    expect(bus.subscriberCount).toBe(1);
    bus.publish({ type: 'stopped', containerId: 'c1', podId: 'p' });
    a.close();
    const seen = async (s: AsyncIterable<{ type: string }>) => {
      const out: string[] = [];
      for await (const e of s) out.push(e.type);
      return out;
    };
    expect(await seen(a)).toEqual(['created', 'started', 'stopped']);
    expect(await seen(b)).toEqual(['created', 'started']);
    expect(bus.subscriberCount).toBe(0);
  });

  it('ends a subscriber that falls MAX_QUEUED_EVENTS behind, and keeps serving the others', async () => {
    const bus = new ContainerEvents();
    const slow = bus.subscribe();
    const fast = bus.subscribe();
    const got: string[] = [];
    const reading = (async () => {
      for await (const e of fast) got.push(e.containerId);
    })();
    for (let i = 0; i <= MAX_QUEUED_EVENTS; i++) {
      bus.publish({ type: 'created', containerId: `c${i}`, podId: 'p' });
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(bus.subscriberCount).toBe(1);
    const drained = async () => {
      let n = 0;
      for await (const _e of slow) n++;
      return n;
    };
    await expect(drained()).rejects.toBeInstanceOf(SubscriberTooSlowError);
    fast.close();
    await reading;
    expect(got).toHaveLength(MAX_QUEUED_EVENTS + 1);
  });
});
