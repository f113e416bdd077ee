// What the RPC handlers are given: configuration and the domain modules they translate onto.
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';
import type { ImageService } from '../image/image-service';
import type { NetworkManager } from '../network/network-manager';
import type { PodService } from '../pod/pod-service';
import type { ContainerService } from '../container/container-service';
import type { StatsCollector } from '../container/stats-collector';
import type { StreamingServer } from '../streaming/server';

export interface ServerDeps {
  config: BerthConfig;
  log: Logger;
  /** berth's own version (package.json). */
  version: string;
  /** Domain modules exist once start-up recovery has opened them; the instrument wrapper refuses calls before. */
  readonly images: ImageService;
  readonly pods: PodService;
  readonly network: NetworkManager;
  readonly containers: ContainerService;
  readonly stats: StatsCollector;
  readonly streaming: StreamingServer;
}
