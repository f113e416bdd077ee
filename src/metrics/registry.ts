// The prom-client registry berth's metrics live in, and the metrics of the gRPC layer. With metrics off (the
// default) nothing is recorded and prom-client is not even loaded: the metrics then cost berthd neither memory
// (prom-client and the tracing API it brings are some 80 modules) nor a sampling timer per call.
import type { DefaultMetricsCollectorConfiguration, LabelValues, Registry } from 'prom-client';
import { LoopDelaySampler } from './loop-delay';

/** What berth does with a counter, a histogram and a gauge: prom-client's, or ones that do nothing. */
export interface CounterLike<L extends string = string> {
  inc(labels: LabelValues<L>, value?: number): void;
  inc(value?: number): void;
}
export interface HistogramLike<L extends string = string> {
  observe(labels: LabelValues<L>, value: number): void;
  observe(value: number): void;
}
export interface GaugeLike {
  inc(value?: number): void;
  dec(value?: number): void;
}

export interface Metrics {
  /** The registry /metrics serves; none with metrics off. */
  registry?: Registry;
  rpcDuration: HistogramLike<'service' | 'method' | 'code'>;
  rpcErrors: CounterLike<'service' | 'method' | 'code'>;
  pull: PullMetrics;
  /** Repairs made by start-up reconciliation, by kind (see src/state/repairs.ts). */
  repairs: CounterLike<'kind'>;
  /** Samples the event loop's delay while CRI calls are in flight (berth_event_loop_delay_seconds). */
  loopDelay: { begin(): () => void };
}

export interface PullMetrics {
  bytes: CounterLike;
  duration: HistogramLike<'outcome'>;
  inFlight: GaugeLike;
  /** Trust policy verifications by result (accepted, rejected) and the requirement or reason that decided. */
  verifications: CounterLike<'result' | 'reason'>;
}

/** The metrics with a registry: what createMetrics() gives with metrics on. */
export interface EnabledMetrics extends Metrics {
  registry: Registry;
  loopDelay: LoopDelaySampler;
}

const nothing = (): void => undefined;
const NOOP = { inc: nothing, dec: nothing, observe: nothing };

/** Metrics that record nothing: what berthd uses with metrics off. */
export function noMetrics(): Metrics {
  return { rpcDuration: NOOP, rpcErrors: NOOP, pull: { bytes: NOOP, duration: NOOP, inFlight: NOOP, verifications: NOOP }, repairs: NOOP, loopDelay: { begin: () => nothing } };
}

/** prom-client's default collector that keeps a timer running (monitorEventLoopDelay at 10 ms: 100
 * wakeups a second at rest); berth_event_loop_delay_seconds takes its place. */
const POLLING_COLLECTORS = new Set(['eventLoopLag']);

type Collector = (registry: Registry, config: DefaultMetricsCollectorConfiguration<'text/plain; version=0.0.4; charset=utf-8'>) => void;

/**
 * prom-client's default metrics (process CPU, memory, file descriptors, heap, GC, handles), each read
 * when /metrics is scraped or, for GC, when a GC happens: collectDefaultMetrics less its polling one.
 * prom-client offers no way to leave one out, so its collectors are loaded one by one by name.
 */
function collectQuietDefaultMetrics(registry: Registry, prefix: string): void {
  const { collectDefaultMetrics } = require('prom-client') as typeof import('prom-client');
  for (const name of collectDefaultMetrics.metricsList) {
    if (POLLING_COLLECTORS.has(name)) continue;
    const collector = require(`prom-client/lib/metrics/${name}`) as Collector;
    collector(registry, { prefix });
  }
}

/** berth's metrics in a prom-client registry, or, when not enabled, metrics that record nothing. */
export function createMetrics(): EnabledMetrics;
export function createMetrics(enabled: boolean): Metrics;
export function createMetrics(enabled = true): Metrics {
  if (!enabled) return noMetrics();
  const { Counter, Gauge, Histogram, Registry } = require('prom-client') as typeof import('prom-client');
  const registry = new Registry();
  collectQuietDefaultMetrics(registry, 'berth_');
  const loopDelay = new LoopDelaySampler(
    new Histogram({
      name: 'berth_event_loop_delay_seconds',
      help: "How late a 10 ms timer fired on berthd's event loop (how long the loop was blocked past it), sampled while CRI calls are in flight.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  );
  const rpcDuration = new Histogram({
    name: 'berth_grpc_request_duration_seconds',
    help: 'Latency of CRI gRPC calls, by method and gRPC status code.',
    labelNames: ['service', 'method', 'code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  const rpcErrors = new Counter({
    name: 'berth_grpc_request_errors_total',
    help: 'CRI gRPC calls that ended with a status other than OK, by method and gRPC status code.',
    labelNames: ['service', 'method', 'code'] as const,
    registers: [registry],
  });
  const pull: PullMetrics = {
    bytes: new Counter({
      name: 'berth_image_pull_bytes_total',
      help: 'Bytes of image blobs received from registries.',
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'berth_image_pull_duration_seconds',
      help: 'Duration of image pulls, by outcome (ok or error).',
      labelNames: ['outcome'] as const,
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'berth_image_pulls_in_flight',
      help: 'Image pulls in progress.',
      registers: [registry],
    }),
    verifications: new Counter({
      name: 'berth_image_signature_verifications_total',
      help: 'Image trust policy verifications at pull, by result (accepted, rejected) and the requirement types that decided (or policy-error).',
      labelNames: ['result', 'reason'] as const,
      registers: [registry],
    }),
  };
  const repairs = new Counter({
    name: 'berth_recovery_repairs_total',
    help: 'Objects start-up reconciliation rolled forward, rolled back or removed as orphans, by kind.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  return { registry, rpcDuration, rpcErrors, pull, repairs, loopDelay };
}
