// berthd's lifecycle: start serving (calls refused until recovery is done), recover, run, shut down.
// Shutting down never touches containers: they belong to their monitors, not to berthd.
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BerthConfig } from './config/schema';
import { createMetrics } from './metrics/registry';
import { serveMetrics, type MetricsServer } from './metrics/http';
import { InflightCalls } from './server/inflight';
import { startCriServer, type CriServer } from './server/grpc-server';
import { packageJson } from './util/package-root';

export interface Daemon {
  stop(reason: string): Promise<void>;
}

/** Directories berth owns; later issues add their recovery (pods, containers, images) here. */
async function recover(config: BerthConfig, log: Logger): Promise<void> {
  for (const dir of [config.root, config.state]) {
    await fs.mkdir(dir, { recursive: true, mode: 0o711 });
  }
  log.info({ root: config.root, state: config.state }, 'recovery done');
}

export async function startDaemon(config: BerthConfig, log: Logger): Promise<Daemon> {
  const version = packageJson().version;
  const metrics = createMetrics();
  const inflight = new InflightCalls();
  let ready = false;
  let metricsServer: MetricsServer | undefined;

  log.info({ version }, 'berthd starting');
  const server: CriServer = await startCriServer(
    { config, log, version },
    { log, metrics, inflight, isReady: () => ready },
  );
  try {
    if (config.metrics.enabled) {
      metricsServer = await serveMetrics(metrics.registry, config.metrics.address, config.metrics.port);
      log.info({ address: metricsServer.address }, 'serving metrics at /metrics');
    }
    await recover(config, log);
  } catch (err) {
    await server.shutdown(0);
    await metricsServer?.close();
    throw err;
  }
  ready = true;
  log.info('berthd ready');

  return {
    async stop(reason) {
      log.info({ reason, inflight: inflight.size }, 'berthd shutting down');
      const timeoutMs = config.shutdown_timeout_seconds * 1000;
      const { graceful } = await server.shutdown(timeoutMs);
      if (!graceful) log.warn({ inflight: inflight.size, timeoutMs }, 'calls still in flight were cut at shutdown');
      await metricsServer?.close();
      log.info('berthd stopped');
    },
  };
}
