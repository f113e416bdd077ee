// Responses encoded once. A handler that answers with the very same object again (ListImages while
// the image list has not changed: the kubelet lists every few seconds, and 1,000 images take
// protobufjs several milliseconds to encode) gets the bytes of the first encoding back. Keyed by object
// identity in a WeakMap: a handler must never change a response object it has returned.
import type * as grpc from '@grpc/grpc-js';

function memoized(serialize: (value: unknown) => Buffer): (value: unknown) => Buffer {
  const encoded = new WeakMap<object, Buffer>();
  return (value) => {
    if (typeof value !== 'object' || value === null) return serialize(value);
    let bytes = encoded.get(value);
    if (!bytes) {
      bytes = serialize(value);
      encoded.set(value, bytes);
    }
    return bytes;
  };
}

/** The service definition with the named methods' responses encoded once per response object. */
export function withEncodedResponses(service: grpc.ServiceDefinition, methods: readonly string[]): grpc.ServiceDefinition {
  for (const name of methods) if (!service[name]) throw new Error(`no method ${name} in the service definition`);
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      methods.includes(name) ? { ...method, responseSerialize: memoized(method.responseSerialize as (value: unknown) => Buffer) } : method,
    ]),
  );
}
