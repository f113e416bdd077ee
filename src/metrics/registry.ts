// The prom-client registry berth's metrics live in, and the metrics of the gRPC layer.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  rpcDuration: Histogram<'service' | 'method' | 'code'>;
  rpcErrors: Counter<'service' | 'method' | 'code'>;
  pull: PullMetrics;
  /** Repairs made by start-up reconciliation, by kind (see src/state/repairs.ts). */
  repairs: Counter<'kind'>;
}

export interface PullMetrics {
  bytes: Counter<string>;
  duration: Histogram<'outcome'>;
  inFlight: Gauge<string>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'berth_' });
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
  };
  const repairs = new Counter({
    name: 'berth_recovery_repairs_total',
    help: 'Objects start-up reconciliation rolled forward, rolled back or removed as orphans, by kind.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  return { registry, rpcDuration, rpcErrors, pull, repairs };
}
