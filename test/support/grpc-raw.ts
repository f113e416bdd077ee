// Raw gRPC over HTTP/2 on a unix socket: for the framing a well-behaved client never sends (bad flags,
// truncated or oversize messages, unknown encodings), and what comes back.
import http2 from 'node:http2';
import net from 'node:net';

export interface RawAnswer {
  status: number;
  grpcStatus?: string;
  message?: string;
}

/** POSTs body to path with gRPC's headers (overridable); resolves the HTTP status, grpc-status and grpc-message. */
export function rawGrpc(socket: string, path: string, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<RawAnswer> {
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
  const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  return new Promise<RawAnswer>((resolve, reject) => {
    const answer: RawAnswer = { status: 0 };
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) answer.grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) answer.message = decodeURIComponent(String(h['grpc-message']));
    };
    req.on('response', (h) => {
      answer.status = Number(h[':status']);
      take(h);
    });
    req.on('trailers', take);
    req.on('data', () => undefined);
    req.on('end', () => resolve(answer));
    req.on('error', reject);
    req.end(body);
  }).finally(() => session.close());
}

/** A gRPC length-prefixed message: the flag byte (1: compressed), the length, the bytes. */
export function prefixed(body: Buffer, flag = 0): Buffer {
  const h = Buffer.alloc(5);
  h[0] = flag;
  h.writeUInt32BE(body.length, 1);
  return Buffer.concat([h, body]);
}
