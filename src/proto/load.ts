// Loads berth's CRI proto once and exposes the two service definitions, typed by the generated code.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
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

let cached: ProtoGrpcType | undefined;

export function loadCri(): ProtoGrpcType {
  if (!cached) {
    const definition = protoLoader.loadSync(CRI_PROTO_PATH, LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return cached;
}
