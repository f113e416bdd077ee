// A typed, promise-based CRI client over a unix socket (or TCP, for the node VM): used by the tests, the benchmark and tooling.
import * as grpc from '@grpc/grpc-js';
import { loadCri } from '../proto/load';
import type { RuntimeServiceClient } from '../generated/runtime/v1/RuntimeService';
import type { ImageServiceClient } from '../generated/runtime/v1/ImageService';

/** The request and response types of a unary method, read off its simplest generated overload. */
type UnaryOf<F> = F extends {
  (argument: infer Req, callback: grpc.requestCallback<infer Res>): grpc.ClientUnaryCall;
}
  ? (request: Req, options?: CallOptions) => Promise<Res>
  : never;

type UnaryMethods<C> = {
  [K in keyof C as UnaryOf<C[K]> extends never ? never : K]: UnaryOf<C[K]>;
};

export interface CallOptions {
  /** Deadline in milliseconds from now. */
  timeoutMs?: number;
}

export type RuntimeApi = UnaryMethods<RuntimeServiceClient>;
export type ImageApi = UnaryMethods<ImageServiceClient>;

export interface CriClient {
  runtime: RuntimeApi;
  image: ImageApi;
  /** The raw clients, for streaming RPCs. */
  rawRuntime: RuntimeServiceClient;
  rawImage: ImageServiceClient;
  close(): void;
}

/**
 * Accepts `unix:///path`, `unix:/path` or a bare absolute path; and, for a runtime reached over TCP (the
 * node VM's forwarded port), grpc-js's `ipv4:`/`ipv6:`/`dns:` targets or a bare `HOST:PORT`.
 */
export function normaliseEndpoint(endpoint: string): string {
  if (endpoint.startsWith('unix://')) return endpoint;
  if (endpoint.startsWith('unix:')) return `unix://${endpoint.slice('unix:'.length)}`;
  if (endpoint.startsWith('/')) return `unix://${endpoint}`;
  if (/^(ipv4|ipv6|dns):/.test(endpoint)) return endpoint;
  if (/^[A-Za-z0-9.-]+:\d+$/.test(endpoint)) return `dns:${endpoint}`;
  throw new Error(`unsupported CRI endpoint ${JSON.stringify(endpoint)}: want unix:///path/to/socket or HOST:PORT`);
}

function promisify<C extends grpc.Client>(client: C, names: readonly string[]): UnaryMethods<C> {
  const api: Record<string, unknown> = {};
  const table = client as unknown as Record<string, Function>;
  for (const name of names) {
    api[name] = (request: unknown, options: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        const callOptions: grpc.CallOptions = {};
        if (options.timeoutMs !== undefined) callOptions.deadline = Date.now() + options.timeoutMs;
        table[name].call(client, request, callOptions, (err: grpc.ServiceError | null, res: unknown) =>
          err ? reject(err) : resolve(res),
        );
      });
  }
  return api as UnaryMethods<C>;
}

function unaryNames(service: grpc.ServiceDefinition): string[] {
  return Object.entries(service)
    .filter(([, def]) => !def.requestStream && !def.responseStream)
    .map(([name]) => name);
}

/** `channelOptions` are added to grpc-js's channel options (e.g. a shorter reconnect backoff). */
export function connectCri(endpoint: string, channelOptions: grpc.ChannelOptions = {}): CriClient {
  const { runtime } = loadCri();
  const target = normaliseEndpoint(endpoint);
  const credentials = grpc.credentials.createInsecure();
  const options = { 'grpc.max_receive_message_length': 16 * 1024 * 1024, ...channelOptions };
  const rawRuntime = new runtime.v1.RuntimeService(target, credentials, options);
  const rawImage = new runtime.v1.ImageService(target, credentials, options);
  return {
    runtime: promisify(rawRuntime, unaryNames(runtime.v1.RuntimeService.service)),
    image: promisify(rawImage, unaryNames(runtime.v1.ImageService.service)),
    rawRuntime,
    rawImage,
    close() {
      rawRuntime.close();
      rawImage.close();
    },
  };
}
