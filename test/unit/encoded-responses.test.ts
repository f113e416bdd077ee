// Responses encoded ahead of grpc-js: the step-wise encoding of a list is byte for byte the encoding of
// the whole message, and the serializer passes Encoded bytes through and encodes a reused object once.
import { describe, expect, it } from 'vitest';
import { loadCri } from '../../src/proto/load';
import { Encoded, encodeInSteps, withEncodedResponses } from '../../src/server/encoded-responses';

const service = () => loadCri().runtime.v1.RuntimeService.service;

function stats(i: number) {
  return {
    attributes: { id: `c${i}`, metadata: { name: `n${i}`, attempt: i }, labels: { k: String(i) }, annotations: {} },
    cpu: { timestamp: String(1_700_000_000_000_000_000n + BigInt(i)), usage_core_nano_seconds: { value: i * 1000 }, usage_nano_cores: { value: '18446744073709551615' } },
    memory: { timestamp: '1', working_set_bytes: { value: i } },
  };
}

describe('encodeInSteps', () => {
  it('gives the bytes of the whole message, for 0, 1, a chunk and several chunks of items', async () => {
    const serialize = service().ListContainerStats.responseSerialize as (v: unknown) => Buffer;
    const deserialize = service().ListContainerStats.responseDeserialize as (b: Buffer) => { stats: { attributes: { id: string } }[] };
    for (const n of [0, 1, 16, 17, 50]) {
      const items = Array.from({ length: n }, (_x, i) => stats(i));
      const stepped = await encodeInSteps('ListContainerStats', 'stats', n, (i) => items[i]);
      expect(stepped.bytes).toEqual(serialize({ stats: items }));
      expect(deserialize(stepped.bytes).stats.map((s) => s.attributes.id)).toEqual(items.map((s) => s.attributes.id));
    }
  });

  it('lets other work run between chunks', async () => {
    let ran = false;
    setImmediate(() => (ran = true));
    let seenBeforeLast = false;
    await encodeInSteps('ListContainerStats', 'stats', 40, (i) => {
      if (i === 39) seenBeforeLast = ran;
      return stats(i);
    });
    expect(seenBeforeLast).toBe(true);
  });
});

describe('withEncodedResponses', () => {
  it('passes Encoded bytes through and encodes a reused response object once', () => {
    const wrapped = withEncodedResponses(service(), ['ListContainers']);
    const serialize = wrapped.ListContainers.responseSerialize as (v: unknown) => Buffer;
    const bytes = Buffer.from([1, 2, 3]);
    expect(serialize(new Encoded(bytes))).toBe(bytes);
    const response = { containers: [{ id: 'a' }] };
    const first = serialize(response);
    expect(serialize(response)).toBe(first); // the same Buffer: not encoded again
    expect(serialize({ containers: [{ id: 'a' }] })).not.toBe(first);
  });
});
