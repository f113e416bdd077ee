import type { GetEventsRequest__Output } from '../../generated/runtime/v1/GetEventsRequest';
import type { ContainerEventResponse } from '../../generated/runtime/v1/ContainerEventResponse';
import type { ContainerEventType } from '../../generated/runtime/v1/ContainerEventType';
import { SubscriberTooSlowError, type ContainerEvent, type EventSubscription } from '../../container/container-events';
import { NotFoundError, ResourceExhaustedError } from '../../errors';
import type { CallContext, StreamHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { containerStatusMessage } from './container-message';
import { sandboxStatus } from './sandbox-message';

const TYPES: Record<ContainerEvent['type'], ContainerEventType> = {
  created: 'CONTAINER_CREATED_EVENT',
  started: 'CONTAINER_STARTED_EVENT',
  stopped: 'CONTAINER_STOPPED_EVENT',
  deleted: 'CONTAINER_DELETED_EVENT',
};

/**
 * GetContainerEvents: a stream of every container's (and pod sandbox's) lifecycle events from the moment
 * it is opened, each with its pod's status and the statuses of the pod's containers as they are when it
 * is sent (the kubelet's evented PLEG takes the pod state from them). It ends when the client goes away,
 * or with RESOURCE_EXHAUSTED when the client reads too slowly to keep up.
 */
export function getContainerEvents(deps: ServerDeps): StreamHandler<GetEventsRequest__Output, ContainerEventResponse> {
  // Subscribed at once, not when the stream is first read: the response headers that follow tell the
  // client that no event from then on is missed.
  return (_request, ctx) => events(deps, deps.containers.events.subscribe(), ctx);
}

async function* events(deps: ServerDeps, subscription: EventSubscription, ctx: CallContext): AsyncIterable<ContainerEventResponse> {
  const stop = () => subscription.close();
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const event of subscription) yield await response(deps, event);
  } catch (err) {
    if (err instanceof SubscriberTooSlowError) throw new ResourceExhaustedError(`GetContainerEvents: ${err.message}`);
    throw err;
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    subscription.close();
  }
}

async function response(deps: ServerDeps, event: ContainerEvent): Promise<ContainerEventResponse> {
  let pod;
  try {
    pod = deps.pods.status(event.podId);
  } catch (err) {
    // A removed sandbox's DELETED: there is no status left to send.
    if (!(err instanceof NotFoundError)) throw err;
  }
  const containers = pod ? await deps.containers.list({ podId: pod.id }) : [];
  return {
    container_id: event.containerId,
    container_event_type: TYPES[event.type],
    created_at: event.at,
    ...(pod ? { pod_sandbox_status: sandboxStatus(pod) } : {}),
    containers_statuses: containers.map(containerStatusMessage),
  };
}
