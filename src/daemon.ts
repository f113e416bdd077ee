// berthd's lifecycle: start serving (calls refused until recovery is done), recover, run, shut down.
// Shutting down never touches containers: they belong to their monitors, not to berthd.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BerthConfig } from './config/schema';
import { createMetrics, type Metrics } from './metrics/registry';
import { serveMetrics, type MetricsServer } from './metrics/http';
import { InflightCalls } from './server/inflight';
import { startCriServer, type CriServer } from './server/grpc-server';
import { packageJson } from './util/package-root';
import { UnavailableError } from './errors';
import { ImageService } from './image/image-service';
import { ContainerEvents } from './container/container-events';
import { NetworkManager } from './network/network-manager';
import { PodService } from './pod/pod-service';
import { ContainerService } from './container/container-service';
import { StatsCollector } from './container/stats-collector';
import { RuntimeRegistry } from './oci/runtime';
import { createCgroupDriver, type CgroupDriverName } from './cgroups/driver';
import { Repairs } from './state/repairs';
import { openStateFormat } from './state/state-format';
import { useCaptureDir } from './util/spawn';
import { ContainerStreams } from './container/container-streams';
import { StreamingServer } from './streaming/server';
import type { ServerDeps } from './server/deps';

export interface Daemon {
  stop(reason: string): Promise<void>;
}

interface Domain {
  images: ImageService;
  pods: PodService;
  network: NetworkManager;
  containers: ContainerService;
  stats: StatsCollector;
  streaming: StreamingServer;
}

/** Opens every domain module from its state on disk. */
async function recover(config: BerthConfig, log: Logger, metrics: Metrics): Promise<Domain> {
  for (const dir of [config.root, config.state]) {
    await fs.mkdir(dir, { recursive: true, mode: 0o711 });
  }
  await openStateFormat(config.root, packageJson().version, log);
  // Helpers' output files: a crash leaves them behind, so the directory starts empty.
  await useCaptureDir(path.join(config.state, 'cmd'));
  const images = await ImageService.open(config.root, config.image, log, metrics.pull);
  const network = new NetworkManager(config.network, config.root);
  const cgroups = createCgroupDriver(config.runtime.cgroup_driver as CgroupDriverName, log);
  const repairs = new Repairs(log.child({ module: 'recovery' }), metrics.repairs);
  // One stream of lifecycle events for sandboxes and containers alike (GetContainerEvents).
  const events = new ContainerEvents();
  const pods = new PodService(config, network, cgroups, log.child({ module: 'pod' }), repairs, events);
  await pods.recover();
  const runtimes = new RuntimeRegistry(config, cgroups.runtimeArgs);
  const containers = new ContainerService(config, pods, images, runtimes, log.child({ module: 'container' }), repairs, events);
  await containers.recover();
  images.addUsageSource(containers);
  const orphans = await images.freeUnused();
  for (const digest of orphans.blobs) repairs.record('image-orphan-blob', { digest }, 'freed a blob no image uses (a pull or removal cut short)');
  for (const chainId of orphans.layers) repairs.record('image-orphan-layer', { chainId }, 'freed a layer no image or container uses (a pull or removal cut short)');
  pods.setContainerHooks(containers);
  const streaming = await startStreaming(config, log, new ContainerStreams(containers, pods, runtimes, config.state, log.child({ module: 'streaming' })));
  log.info({ root: config.root, state: config.state }, 'recovery done');
  return { images, pods, network, containers, stats: new StatsCollector(), streaming };
}

async function startStreaming(config: BerthConfig, log: Logger, backend: ContainerStreams): Promise<StreamingServer> {
  const s = config.streaming;
  if (Boolean(s.tls_cert_file) !== Boolean(s.tls_key_file)) throw new Error('streaming: tls_cert_file and tls_key_file must be set together');
  const server = new StreamingServer({
    backend,
    address: s.address,
    port: s.port,
    ...(s.tls_cert_file ? { tls: { certFile: s.tls_cert_file, keyFile: s.tls_key_file } } : {}),
    tokenTtlMs: s.url_ttl_seconds * 1000,
    idleTimeoutMs: s.idle_timeout_seconds * 1000,
    log: log.child({ module: 'streaming' }),
  });
  await server.listen();
  return server;
}

function serverDeps(config: BerthConfig, log: Logger, version: string, domain: () => Domain | undefined): ServerDeps {
  const ready = (): Domain => {
    const d = domain();
    if (!d) throw new UnavailableError('berthd is starting: recovery has not finished');
    return d;
  };
  return {
    config,
    log,
    version,
    get images() {
      return ready().images;
    },
    get pods() {
      return ready().pods;
    },
    get network() {
      return ready().network;
    },
    get containers() {
      return ready().containers;
    },
    get stats() {
      return ready().stats;
    },
    get streaming() {
      return ready().streaming;
    },
  };
}

export async function startDaemon(config: BerthConfig, log: Logger): Promise<Daemon> {
  const version = packageJson().version;
  const metrics = createMetrics(config.metrics.enabled);
  const inflight = new InflightCalls();
  let domain: Domain | undefined;
  let metricsServer: MetricsServer | undefined;

  log.info({ version }, 'berthd starting');
  const server: CriServer = await startCriServer(serverDeps(config, log, version, () => domain), {
    log,
    metrics,
    inflight,
    isReady: () => domain !== undefined,
  });
  try {
    if (metrics.registry) {
      metricsServer = await serveMetrics(metrics.registry, config.metrics.address, config.metrics.port);
      log.info({ address: metricsServer.address }, 'serving metrics at /metrics');
    }
    domain = await recover(config, log, metrics);
  } catch (err) {
    await server.shutdown(0);
    await metricsServer?.close();
    throw err;
  }
  log.info('berthd ready');

  return {
    async stop(reason) {
      log.info({ reason, inflight: inflight.size }, 'berthd shutting down');
      const timeoutMs = config.shutdown_timeout_seconds * 1000;
      const { graceful } = await server.shutdown(timeoutMs);
      if (!graceful) log.warn({ inflight: inflight.size, timeoutMs }, 'calls still in flight were cut at shutdown');
      await metricsServer?.close();
      domain?.containers.close();
      domain?.network.close();
      domain?.images.close();
      await domain?.streaming.close();
      log.info('berthd stopped');
    },
  };
}
