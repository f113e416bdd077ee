// The gRPC server: both CRI services, instrumented, on a unix socket with mode 0660.
// berthd owns the listening socket itself and hands each connection to its gRPC server (grpc/server.ts),
// through the authority rewriter only for clients that need it (h2/authority-rewriter.ts).
import fs from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from 'pino';
import { handOver } from './h2/authority-rewriter';
import { GrpcServer } from './grpc/server';
import { criServices } from '../proto/load';
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

function acceptConnections(server: GrpcServer, log: Logger): net.Server {
  const onError = (err: Error) => log.warn({ err: err.message }, 'dropped a CRI connection: malformed HTTP/2');
  return net.createServer((socket) => handOver(socket, (conn) => server.injectConnection(conn), onError));
}

export async function startCriServer(deps: ServerDeps, instrument: InstrumentDeps): Promise<CriServer> {
  const { runtime, image } = criServices();
  const server = new GrpcServer({ maxReceiveBytes: MAX_MESSAGE_BYTES, maxSendBytes: MAX_MESSAGE_BYTES });
  server.addService(
    withEncodedResponses(runtime, ['ListPodSandbox', 'ListContainers', 'ListContainerStats', 'ListPodSandboxStats']),
    instrumentService('RuntimeService', runtime, runtimeHandlers(deps), instrument),
  );
  server.addService(
    withEncodedResponses(image, ['ListImages']),
    instrumentService('ImageService', image, imageHandlers(deps), instrument),
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
      const result = await server.shutdown(timeoutMs);
      await removeSocket(socketPath);
      return result;
    },
  };
}
