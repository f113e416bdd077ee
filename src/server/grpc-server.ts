// The gRPC server: both CRI services, instrumented, on a unix socket with mode 0660.
// berthd owns the listening socket itself and hands each connection to grpc-js through a
// connection injector, through the authority rewriter only for clients that need it (h2/authority-rewriter.ts).
import fs from 'node:fs/promises';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { handOver } from './h2/authority-rewriter';
import { loadCri } from '../proto/load';
import { instrumentService, type InstrumentDeps } from './instrument';
import { imageHandlers, runtimeHandlers } from './services';
import type { ServerDeps } from './deps';
import { prepareSocketPath, removeSocket, SOCKET_MODE } from './unix-socket';
import { withEncodedResponses } from './encoded-responses';

/** Messages such as ListContainers with thousands of entries exceed grpc's 4 MiB default. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface CriServer {
  /** Stops accepting calls, waits up to timeoutMs for calls in flight, then cuts the rest. */
  shutdown(timeoutMs: number): Promise<{ graceful: boolean }>;
}

function listen(listener: net.Server, socketPath: string): Promise<void> {
  // The umask keeps the socket from ever being wider than 0660, even before the chmod below.
  const previous = process.umask(0o117);
  return new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      process.umask(previous);
      reject(new Error(`cannot listen on ${socketPath}: ${err.message}`));
    };
    listener.once('error', fail);
    listener.listen(socketPath, () => {
      process.umask(previous);
      listener.off('error', fail);
      resolve();
    });
  });
}

function acceptConnections(server: grpc.Server, log: Logger): net.Server {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const onError = (err: Error) => log.warn({ err: err.message }, 'dropped a CRI connection: malformed HTTP/2');
  return net.createServer((socket) => handOver(socket, (conn) => injector.injectConnection(conn), onError));
}

export async function startCriServer(deps: ServerDeps, instrument: InstrumentDeps): Promise<CriServer> {
  const { runtime } = loadCri();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    // channelz (gRPC's introspection service) is not served, but its bookkeeping runs on every call.
    'grpc.enable_channelz': 0,
  });
  server.addService(
    withEncodedResponses(runtime.v1.RuntimeService.service, ['ListPodSandbox', 'ListContainers', 'ListContainerStats', 'ListPodSandboxStats']),
    instrumentService('RuntimeService', runtime.v1.RuntimeService.service, runtimeHandlers(deps), instrument),
  );
  server.addService(
    withEncodedResponses(runtime.v1.ImageService.service, ['ListImages']),
    instrumentService('ImageService', runtime.v1.ImageService.service, imageHandlers(deps), instrument),
  );
  const socketPath = deps.config.listen;
  await prepareSocketPath(socketPath);
  const listener = acceptConnections(server, deps.log);
  await listen(listener, socketPath);
  await fs.chmod(socketPath, SOCKET_MODE);
  deps.log.info({ socket: socketPath }, 'serving CRI');

  return {
    async shutdown(timeoutMs) {
      listener.close();
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
