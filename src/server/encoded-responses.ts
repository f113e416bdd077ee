// Responses encoded ahead of grpc-js's own serialisation, for two reasons:
// - Encoded once. A handler that answers with the very same object again (ListImages, or the unfiltered
//   ListPodSandbox and ListContainers, while nothing changed: the kubelet lists every second, and
//   protobufjs takes milliseconds for a thousand items) gets the bytes of the first encoding back. Keyed
//   by object identity in a WeakMap: a handler must never change a response object it has returned.
// - Encoded in steps. A large list (stats of hundreds of containers) is encoded a chunk of items at a time,
//   yielding to the event loop in between, so that other calls never wait behind one long encoding. The
//   encoding of a message with one repeated field is the concatenation of the encodings of its items'
//   chunks, each encoded as a message of that type holding only that chunk.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import { criServices } from '../proto/load';

/** A response already encoded: its serializer hands the bytes through. */
export class Encoded {
  constructor(readonly bytes: Buffer) {}
}

/** Handlers are typed by their response message; an Encoded stands in for one (see the serializer below). */
export const asResponse = <R>(e: Encoded): R => e as unknown as R;

function memoized(serialize: (value: unknown) => Buffer): (value: unknown) => Buffer {
  const encoded = new WeakMap<object, Buffer>();
  return (value) => {
    if (value instanceof Encoded) return value.bytes;
    if (typeof value !== 'object' || value === null) return serialize(value);
    let bytes = encoded.get(value);
    if (!bytes) {
      bytes = serialize(value);
      encoded.set(value, bytes);
    }
    return bytes;
  };
}

/** The service definition with the named methods' responses encoded once per response object, and
 * Encoded responses passed through. */
export function withEncodedResponses(service: grpc.ServiceDefinition, methods: readonly string[]): grpc.ServiceDefinition {
  for (const name of methods) if (!service[name]) throw new Error(`no method ${name} in the service definition`);
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      methods.includes(name) ? { ...method, responseSerialize: memoized(method.responseSerialize as (value: unknown) => Buffer) } : method,
    ]),
  );
}

/** Items built and encoded per chunk: small enough that one chunk costs the loop a millisecond or two. */
const CHUNK = 16;

/**
 * Encodes the response of a RuntimeService method whose only content is the repeated field `field`, building
 * item i with build(i), CHUNK items at a time with a turn of the event loop between chunks.
 */
export async function encodeInSteps(method: string, field: string, count: number, build: (i: number) => unknown): Promise<Encoded> {
  const serialize = criServices().runtime[method].responseSerialize as (value: unknown) => Buffer;
  const parts: Buffer[] = [];
  for (let start = 0; start < count; start += CHUNK) {
    if (start > 0) await yieldToLoop();
    const items = [];
    for (let i = start; i < Math.min(count, start + CHUNK); i++) items.push(build(i));
    parts.push(serialize({ [field]: items }));
  }
  return new Encoded(Buffer.concat(parts));
}
