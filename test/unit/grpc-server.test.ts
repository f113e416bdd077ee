// berth's gRPC server on node:http2 (src/server/grpc/server.ts), against grpc-js's client and raw HTTP/2:
// statuses, deadlines, cancellation, server streaming, framing errors, size limits, compression, shutdown.
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCri } from '../../src/proto/load';
import { GrpcServer, type ServerCall } from '../../src/server/grpc/server';
import { encodeGrpcMessage, parseTimeout } from '../../src/server/grpc/status';
import { prefixed, rawGrpc } from '../support/grpc-raw';

const service = () => loadCri().runtime.v1.RuntimeService.service;
type Callback = (err: Partial<grpc.ServiceError> | null, value?: unknown) => void;

let dir: string;
let socket: string;
let server: GrpcServer;
let listener: net.Server;
const seen: { cancelled: string[] } = { cancelled: [] };

function impl(): grpc.UntypedServiceImplementation {
  const unary = (fn: (call: ServerCall, cb: Callback) => void) => fn as unknown as grpc.handleUnaryCall<unknown, unknown>;
  return {
    Version: unary((call, cb) => {
      const version = (call.request as { version: string }).version;
      if (version === 'fail') return cb({ code: grpc.status.NOT_FOUND, details: 'no such thing: “x”' });
      if (version === 'hang') {
        call.on('cancelled', () => seen.cancelled.push('hang'));
        return; // never answers
      }
      if (version === 'slow') return void setTimeout(() => cb(null, { version: 'late' }), 300);
      if (version === 'big') return cb(null, { version: 'x'.repeat(2000) });
      cb(null, { version: `v:${version}`, runtime_name: 'test' });
    }),
    GetContainerEvents: ((call: ServerCall) => {
      for (let i = 0; i < 3; i++) call.write({ container_id: `c${i}` });
      call.end();
    }) as unknown as grpc.handleServerStreamingCall<unknown, unknown>,
  };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-grpc-'));
  socket = path.join(dir, 'g.sock');
  server = new GrpcServer({ maxReceiveBytes: 1024, maxSendBytes: 1024 });
  server.addService(service(), impl());
  listener = net.createServer((s) => server.injectConnection(s));
  await new Promise<void>((r) => listener.listen(socket, r));
});

afterAll(() => {
  listener.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function client() {
  const Ctor = grpc.makeGenericClientConstructor(service(), 'RuntimeService');
  return new Ctor(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Function>;
}

function unary(method: string, request: object, deadlineMs?: number): Promise<{ value?: unknown; err?: grpc.ServiceError }> {
  const c = client();
  const options: grpc.CallOptions = deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
  return new Promise((resolve) => {
    c[method](request, options, (err: grpc.ServiceError | null, value: unknown) => {
      c.close();
      resolve(err ? { err } : { value });
    });
  });
}

/** A raw HTTP/2 request to Version: headers, body bytes, and what comes back (status, grpc-status, grpc-message). */
const raw = (headers: http2.OutgoingHttpHeaders, body: Buffer) => rawGrpc(socket, '/runtime.v1.RuntimeService/Version', headers, body);

const versionRequest = (version: string) => service().Version.requestSerialize({ version }) as Buffer;

describe('GrpcServer', () => {
  it('answers a unary call, and an error status with its message intact', async () => {
    expect(await unary('Version', { version: 'a' })).toMatchObject({ value: { version: 'v:a', runtime_name: 'test' } });
    const { err } = await unary('Version', { version: 'fail' });
    expect([err?.code, err?.details]).toEqual([grpc.status.NOT_FOUND, 'no such thing: “x”']);
  });

  it('answers UNIMPLEMENTED for a method it does not serve, 415 for what is not gRPC', async () => {
    const { err } = await unary('Status', {});
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(err?.details).toContain('/runtime.v1.RuntimeService/Status');
    expect((await raw({ 'content-type': 'text/plain' }, Buffer.alloc(0))).status).toBe(415);
  });

  it('streams server-streaming messages and ends with OK', async () => {
    const c = client();
    const got: string[] = [];
    const stream = c.GetContainerEvents({}) as grpc.ClientReadableStream<{ container_id: string }>;
    stream.on('data', (m) => got.push(m.container_id));
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    c.close();
    expect(got).toEqual(['c0', 'c1', 'c2']);
  });

  it('ends a call past its deadline DEADLINE_EXCEEDED and tells the handler', async () => {
    const { err } = await unary('Version', { version: 'hang' }, 150);
    expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await expect.poll(() => seen.cancelled).toContain('hang');
  });

  it('tells the handler when the client cancels', async () => {
    seen.cancelled = [];
    const c = client();
    const call = c.Version({ version: 'hang' }, () => undefined) as grpc.ClientUnaryCall;
    await expect.poll(() => server['calls'].size).toBe(1);
    call.cancel();
    await expect.poll(() => seen.cancelled).toEqual(['hang']);
    c.close();
  });

  it('refuses messages over the size limits RESOURCE_EXHAUSTED', async () => {
    const { err } = await unary('Version', { version: 'y'.repeat(2000) });
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const { err: out } = await unary('Version', { version: 'big' });
    expect(out?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('answers framing errors with the codes grpc-js gave them', async () => {
    const body = versionRequest('q');
    // A message cut short by the end of the stream.
    expect(await raw({}, prefixed(body).subarray(0, 7))).toMatchObject({ status: 200, grpcStatus: String(grpc.status.INTERNAL) });
    // The compressed flag with no grpc-encoding.
    expect(await raw({}, prefixed(body, 1))).toMatchObject({ grpcStatus: String(grpc.status.INTERNAL) });
    // No message, and two messages, for a unary method.
    expect(await raw({}, Buffer.alloc(0))).toMatchObject({ grpcStatus: String(grpc.status.UNIMPLEMENTED) });
    expect(await raw({}, Buffer.concat([prefixed(body), prefixed(body)]))).toMatchObject({ grpcStatus: String(grpc.status.UNIMPLEMENTED) });
    // A message that is not the request type's encoding.
    expect(await raw({}, prefixed(Buffer.from([0xff, 0xff, 0xff])))).toMatchObject({ grpcStatus: String(grpc.status.INVALID_ARGUMENT) });
    // An encoding berth does not know.
    expect(await raw({ 'grpc-encoding': 'snappy' }, prefixed(body, 1))).toMatchObject({ grpcStatus: String(grpc.status.UNIMPLEMENTED) });
  });

  it('takes gzip-compressed requests', async () => {
    const res = await raw({ 'grpc-encoding': 'gzip' }, prefixed(zlib.gzipSync(versionRequest('zipped')), 1));
    expect(res).toMatchObject({ status: 200, grpcStatus: '0' });
  });

  it('finishes the calls in flight at shutdown, and answers nothing new', async () => {
    const slow = unary('Version', { version: 'slow' });
    await expect.poll(() => server['calls'].size).toBe(1);
    const { graceful } = await server.shutdown(5000);
    expect(graceful).toBe(true);
    expect(await slow).toMatchObject({ value: { version: 'late' } });
    const after = await unary('Version', { version: 'a' }, 2000);
    expect(after.err?.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('gRPC headers', () => {
  it('percent-encodes grpc-message and parses grpc-timeout', () => {
    expect(encodeGrpcMessage('a%b\n“')).toBe('a%25b%0A%E2%80%9C');
    expect([parseTimeout('100m'), parseTimeout('2S'), parseTimeout('1H'), parseTimeout('5u'), parseTimeout('x'), parseTimeout(undefined)]).toEqual([100, 2000, 3_600_000, 0.005, undefined, undefined]);
  });
});
