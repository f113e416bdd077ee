// The gRPC server: both CRI services, instrumented, on a unix socket with mode 0660.
import fs from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { loadCri } from '../proto/load';
import { instrumentService, type InstrumentDeps } from './instrument';
import { imageHandlers, runtimeHandlers } from './services';
import type { ServerDeps } from './deps';
import { prepareSocketPath, removeSocket, SOCKET_MODE } from './unix-socket';

/** Messages such as ListContainers with thousands of entries exceed grpc's 4 MiB default. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface CriServer {
  /** Stops accepting calls, waits up to timeoutMs for calls in flight, then cuts the rest. */
  shutdown(timeoutMs: number): Promise<{ graceful: boolean }>;
}

function bind(server: grpc.Server, socketPath: string): Promise<void> {
  // The umask keeps the socket from ever being wider than 0660, even before the chmod below.
  const previous = process.umask(0o117);
  return new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
      process.umask(previous);
      if (err) reject(new Error(`cannot listen on ${socketPath}: ${err.message}`));
      else resolve();
    });
  });
}

export async function startCriServer(deps: ServerDeps, instrument: InstrumentDeps): Promise<CriServer> {
  const { runtime } = loadCri();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  server.addService(
    runtime.v1.RuntimeService.service,
    instrumentService('RuntimeService', runtime.v1.RuntimeService.service, runtimeHandlers(deps), instrument),
  );
  server.addService(
    runtime.v1.ImageService.service,
    instrumentService('ImageService', runtime.v1.ImageService.service, imageHandlers(deps), instrument),
  );
  const socketPath = deps.config.listen;
  await prepareSocketPath(socketPath);
  await bind(server, socketPath);
  await fs.chmod(socketPath, SOCKET_MODE);
  deps.log.info({ socket: socketPath }, 'serving CRI');

  return {
    async shutdown(timeoutMs) {
      const graceful = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!graceful) server.forceShutdown();
      await removeSocket(socketPath);
      return { graceful };
    },
  };
}
