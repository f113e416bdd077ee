// berth_event_loop_delay_seconds: exported at /metrics, sampled only while CRI calls are in flight, and
// it records a blocked loop. No time bounds: a loaded machine only makes the recorded delays longer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { Histogram } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCri, type CriClient } from '../../src/client/cri-client';
import type { RuntimeServiceHandlers } from '../../src/generated/runtime/v1/RuntimeService';
import { createMetrics, type EnabledMetrics } from '../../src/metrics/registry';
import { loadCri } from '../../src/proto/load';
import { InflightCalls } from '../../src/server/inflight';
import { instrumentService, type Handlers } from '../../src/server/instrument';

const NAME = 'berth_event_loop_delay_seconds';
const BLOCK_MS = 200;

/** Blocks the event loop (a busy wait, as a synchronous handler would). */
function blockLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** The histogram's sample count, and how many samples were more than `seconds`. */
async function samples(metrics: EnabledMetrics, seconds: number): Promise<{ count: number; above: number }> {
  const histogram = metrics.registry.getSingleMetric(NAME) as Histogram;
  const { values } = await histogram.get();
  const count = values.find((v) => v.metricName === `${NAME}_count`)?.value ?? 0;
  const within = values.find((v) => v.metricName === `${NAME}_bucket` && v.labels.le === seconds)?.value ?? 0;
  return { count, above: count - within };
}

describe('event loop delay metric', () => {
  it('is exported in place of prom-client’s polling event-loop lag collector', async () => {
    const metrics = createMetrics();
    const text = await metrics.registry.metrics();
    expect(text).toContain(`# TYPE ${NAME} histogram`);
    expect(text).toMatch(new RegExp(`${NAME}_bucket\\{le="0.05"\\} 0`));
    expect(text).not.toContain('eventloop_lag');
    // The other default metrics are still there.
    expect(text).toMatch(/berth_process_resident_memory_bytes \d+/);
    expect(text).toMatch(/berth_nodejs_heap_size_used_bytes \d+/);
  });

  it('has no timer armed at rest, samples while work is in flight, and records a blocked loop', async () => {
    const metrics = createMetrics();
    expect(metrics.loopDelay.armed).toBe(false);
    const end = metrics.loopDelay.begin();
    expect(metrics.loopDelay.armed).toBe(true);
    blockLoop(BLOCK_MS);
    await expect.poll(async () => (await samples(metrics, 0.05)).above, { timeout: 60_000 }).toBeGreaterThanOrEqual(1);
    end();
    // At most one more sample, then nothing is armed.
    await expect.poll(() => metrics.loopDelay.armed, { timeout: 60_000 }).toBe(false);
    const settled = (await samples(metrics, 0.05)).count;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await samples(metrics, 0.05)).count).toBe(settled);
  });

  describe('through the CRI instrument wrapper', () => {
    let dir: string;
    let server: grpc.Server;
    let client: CriClient;
    const metrics = createMetrics();

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-loop-delay-'));
      const { runtime } = loadCri();
      const handlers: Handlers<RuntimeServiceHandlers> = {
        Version: async (req) => {
          if (req.version === 'block') {
            // Let the sampler's timer come due, then hold the loop past it.
            await new Promise((resolve) => setImmediate(resolve));
            blockLoop(BLOCK_MS);
          }
          return { runtime_name: 'test' };
        },
      };
      server = new grpc.Server();
      const impl = instrumentService('RuntimeService', runtime.v1.RuntimeService.service, handlers, {
        log: pino({ level: 'silent' }),
        metrics,
        inflight: new InflightCalls(),
        isReady: () => true,
      });
      server.addService(runtime.v1.RuntimeService.service, impl);
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(`unix://${dir}/s.sock`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
      );
      client = connectCri(`unix://${dir}/s.sock`);
    });

    afterAll(() => {
      client.close();
      server.forceShutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a call that blocks the loop shows in the histogram; idle, nothing is armed', async () => {
      await client.runtime.Version({ version: 'quick' });
      await expect.poll(() => metrics.loopDelay.armed, { timeout: 60_000 }).toBe(false);
      const before = await samples(metrics, 0.05);
      await client.runtime.Version({ version: 'block' });
      await expect.poll(async () => (await samples(metrics, 0.05)).above, { timeout: 60_000 }).toBeGreaterThan(before.above);
      await expect.poll(() => metrics.loopDelay.armed, { timeout: 60_000 }).toBe(false);
      const text = await metrics.registry.metrics();
      expect(text).toMatch(new RegExp(`${NAME}_count [1-9]`));
    });
  });
});
