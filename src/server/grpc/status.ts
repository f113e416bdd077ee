// gRPC status codes and the status carried in trailers.
export { status as Status } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';

/** A call ending with a status other than OK. */
export class GrpcError extends Error {
  constructor(
    readonly code: Status,
    readonly details: string,
  ) {
    super(details);
  }
}

/** grpc-message is percent-encoded (the gRPC over HTTP/2 spec: every byte outside printable ASCII and '%'). */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** grpc-timeout ("<digits><unit>", unit one of H M S m u n) in milliseconds; undefined for none or a bad value. */
export function parseTimeout(value: string | undefined): number | undefined {
  const m = value ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  if (!m) return undefined;
  const per: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
  return Number(m[1]) * per[m[2]];
}
