// Container lifecycle events for the CRI's GetContainerEvents (the kubelet's evented PLEG): created,
// started, stopped and deleted, for containers and for pod sandboxes (whose id stands for the
// container, as containerd and CRI-O report them). Events are published as the records change, from
// the record writes themselves (an exit comes from the monitor's exit file, watched with inotify).
// Any number of subscribers; each has a queue of its own, so a slow one never holds the others back,
// and one that falls too far behind is ended rather than let its queue grow without bound.

import { nowNanos } from './container';

export type ContainerEventType = 'created' | 'started' | 'stopped' | 'deleted';

export interface ContainerEvent {
  type: ContainerEventType;
  /** The container's id, or the pod sandbox's for the sandbox's own events. */
  containerId: string;
  podId: string;
  /** Nanoseconds since the epoch, as a decimal string. */
  at: string;
}

/** Events a subscriber may have waiting before it is ended as too slow. */
export const MAX_QUEUED_EVENTS = 10_000;

export class SubscriberTooSlowError extends Error {}

/** One subscriber's events, as an async iterable that ends when it is closed (or falls behind). */
export class EventSubscription implements AsyncIterable<ContainerEvent> {
  private readonly queue: ContainerEvent[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private failure: Error | undefined;

  constructor(private readonly onClose: (s: EventSubscription) => void) {}

  push(event: ContainerEvent): void {
    if (this.ended) return;
    if (this.queue.length >= MAX_QUEUED_EVENTS) {
      this.failure = new SubscriberTooSlowError(`the event subscriber fell ${MAX_QUEUED_EVENTS} events behind and was ended`);
      this.close();
      return;
    }
    this.queue.push(event);
    this.wake?.();
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.onClose(this);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ContainerEvent> {
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      this.close();
    }
  }
}

export class ContainerEvents {
  private readonly subscribers = new Set<EventSubscription>();

  subscribe(): EventSubscription {
    const s = new EventSubscription((gone) => this.subscribers.delete(gone));
    this.subscribers.add(s);
    return s;
  }

  /** Tells every subscriber, stamped now. */
  publish(event: Omit<ContainerEvent, 'at'>): void {
    if (this.subscribers.size === 0) return;
    const stamped = { ...event, at: nowNanos() };
    for (const s of this.subscribers) s.push(stamped);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }
}

/** The events a record's change from `before` (undefined: not there, or still being created) to `after` makes. */
export function transitions(before: { state: string } | undefined, after: { state: string } | undefined): ContainerEventType[] {
  if (!after) return before ? ['deleted'] : [];
  const out: ContainerEventType[] = [];
  if (!before) out.push('created');
  if (after.state === 'running' && before?.state !== 'running') out.push('started');
  if (after.state === 'exited' && before?.state !== 'exited') out.push('stopped');
  return out;
}
