// Loads berth's CRI proto once: the two services' method definitions (what berthd's gRPC server serves)
// and, for clients, grpc-js's package object typed by the generated code.
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/api';
import { packageRoot } from '../util/package-root';

/** Options that match the flags given to proto-loader-gen-types in package.json (gen:proto). */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const CRI_PROTO_PATH = path.join(packageRoot(), 'proto', 'api.proto');

let definition: protoLoader.PackageDefinition | undefined;
let cached: ProtoGrpcType | undefined;

const packageDefinition = (): protoLoader.PackageDefinition => (definition ??= protoLoader.loadSync(CRI_PROTO_PATH, LOADER_OPTIONS));

/** The method definitions (paths, serializers) of the CRI services, without loading grpc-js. */
export function criServices(): { runtime: grpc.ServiceDefinition; image: grpc.ServiceDefinition } {
  const d = packageDefinition();
  return {
    runtime: d['runtime.v1.RuntimeService'] as unknown as grpc.ServiceDefinition,
    image: d['runtime.v1.ImageService'] as unknown as grpc.ServiceDefinition,
  };
}

/** grpc-js's package object (client constructors and service definitions): for clients. */
export function loadCri(): ProtoGrpcType {
  if (!cached) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const grpcJs = require('@grpc/grpc-js') as typeof grpc;
    cached = grpcJs.loadPackageDefinition(packageDefinition()) as unknown as ProtoGrpcType;
  }
  return cached;
}
