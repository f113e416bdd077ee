// berth's gRPC server: unary and server-streaming calls straight on Node's HTTP/2, without grpc-js's server
// (whose per-call machinery of interceptors, metadata objects and listeners cost more than most CRI calls:
// see docs/architecture.md). It serves the same service definitions and implementations grpc-js takes
// (proto-loader's serializers; handlers of the shape instrument.ts builds), so the wire format and the
// handlers are unchanged. What the CRI does not use is left out: client streaming, compression of responses,
// custom metadata.
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type * as grpc from '@grpc/grpc-js';
import { frame, MessageReader, messageBytes } from './framing';
import { encodeGrpcMessage, GrpcError, parseTimeout, Status } from './status';

export interface GrpcServerOptions {
  maxReceiveBytes: number;
  maxSendBytes: number;
}

type UnaryImpl = (call: ServerCall, callback: (err: Partial<grpc.ServiceError> | null, value?: unknown) => void) => void;
type StreamImpl = (call: ServerCall) => void;

interface Route {
  path: string;
  responseStream: boolean;
  deserialize: (bytes: Buffer) => unknown;
  serialize: (value: unknown) => Buffer;
  impl: UnaryImpl | StreamImpl;
}

const { HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_PATH, HTTP2_HEADER_METHOD } = http2.constants;
const CONTENT_TYPE = 'application/grpc+proto';
const ACCEPT_ENCODING = 'identity,gzip,deflate';

/** A status with no response message: the trailers-only response (status and gRPC status in one HEADERS). */
function respondStatusOnly(stream: http2.ServerHttp2Stream, code: Status, details?: string): void {
  const headers: http2.OutgoingHttpHeaders = { [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: CONTENT_TYPE, 'grpc-status': String(code) };
  if (details) headers['grpc-message'] = encodeGrpcMessage(details);
  stream.respond(headers, { endStream: true });
}

/**
 * One call as a handler sees it (what grpc-js's ServerUnaryCall and ServerWritableStream offer that berth's
 * handlers use): the request, 'cancelled' when the client goes away or the deadline passes, and for a
 * server-streaming call write (false: wait for 'drain'), end and destroy.
 */
export class ServerCall extends EventEmitter {
  cancelled = false;
  private headersSent = false;
  private done = false;

  constructor(
    readonly request: unknown,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly route: Route,
    private readonly maxSendBytes: number,
  ) {
    super();
    stream.on('drain', () => this.emit('drain'));
  }

  /** True once a status has been sent (or the stream is gone). */
  get ended(): boolean {
    return this.done;
  }

  /** Tells the handler the call is abandoned (the client went away, or the deadline passed). */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: CONTENT_TYPE, 'grpc-accept-encoding': ACCEPT_ENCODING }, { waitForTrailers: true });
  }

  /** Sends the response headers now (a server stream: the client learns it is open before any message). */
  sendMetadata(): void {
    if (!this.done && !this.stream.destroyed) this.sendHeaders();
  }

  /** The serialized message, or undefined after ending the call RESOURCE_EXHAUSTED when it is too large. */
  private encode(message: unknown): Buffer | undefined {
    const body = this.route.serialize(message);
    if (body.length <= this.maxSendBytes) return body;
    this.finish({ code: Status.RESOURCE_EXHAUSTED, details: `response message larger than max (${body.length} vs. ${this.maxSendBytes})` });
    return undefined;
  }

  /** A unary call's answer: the message and status OK. */
  reply(message: unknown): void {
    if (this.done || this.stream.destroyed) return;
    const body = this.encode(message);
    if (!body) return;
    this.sendHeaders();
    this.done = true;
    this.emit('finished');
    this.stream.once('wantTrailers', () => this.stream.sendTrailers({ 'grpc-status': '0' }));
    this.stream.end(frame(body));
  }

  /** Writes one message of a server-streaming call; false when the stream's buffer is full ('drain' follows). */
  write(message: unknown): boolean {
    if (this.done || this.stream.destroyed) return true;
    const body = this.encode(message);
    if (!body) return true;
    this.sendHeaders();
    return this.stream.write(frame(body));
  }

  /** Ends a server-streaming call with OK. */
  end(): void {
    this.finish({ code: Status.OK });
  }

  /** Ends the call with an error status. */
  destroy(err?: Partial<grpc.ServiceError>): void {
    this.finish({ code: err?.code ?? Status.UNKNOWN, details: err?.details ?? err?.message ?? '' });
  }

  /** Ends the call with a status: in trailers after response messages, or as a trailers-only response. */
  finish(status: { code: Status; details?: string }): void {
    if (this.done) return;
    this.done = true;
    this.emit('finished');
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    if (!this.headersSent) {
      this.headersSent = true;
      respondStatusOnly(stream, status.code, status.details);
      return;
    }
    const trailers: http2.OutgoingHttpHeaders = { 'grpc-status': String(status.code) };
    if (status.details) trailers['grpc-message'] = encodeGrpcMessage(status.details);
    stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    stream.end();
  }
}

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly calls = new Set<ServerCall>();
  private draining = false;

  constructor(private readonly opts: GrpcServerOptions) {
    this.h2 = http2.createServer({ settings: { maxHeaderListSize: 64 * 1024 } });
    this.h2.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      // A client's broken connection is its own affair: nothing to report beyond the call's cancellation.
      session.on('error', () => session.destroy());
    });
    this.h2.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  addService(service: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
    for (const [name, def] of Object.entries(service)) {
      const fn = impl[name] ?? impl[def.originalName ?? ''];
      if (!fn) continue;
      if (def.requestStream) throw new Error(`${def.path}: client streaming is not served`);
      this.routes.set(def.path, {
        path: def.path,
        responseStream: def.responseStream,
        deserialize: def.requestDeserialize as (bytes: Buffer) => unknown,
        serialize: def.responseSerialize as (value: unknown) => Buffer,
        impl: fn as unknown as UnaryImpl | StreamImpl,
      });
    }
  }

  /** Serves HTTP/2 on a connection (a socket, or the authority rewriter's stream). */
  injectConnection(conn: Duplex): void {
    this.h2.emit('connection', conn);
  }

  /**
   * Stops taking calls: every connection is told GOAWAY (its streams in flight go on; new calls are answered
   * UNAVAILABLE) and closes once they are done. Waits up to timeoutMs for that, then cancels the calls left
   * and closes every connection.
   */
  async shutdown(timeoutMs: number): Promise<{ graceful: boolean }> {
    this.draining = true;
    const closed = [...this.sessions].map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.close(() => resolve()))));
    let timer: NodeJS.Timeout | undefined;
    const graceful = await Promise.race([
      Promise.all(closed).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    for (const c of this.calls) c.cancel();
    for (const s of this.sessions) s.destroy();
    return { graceful };
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const reply = (code: Status, details: string) => {
      if (!stream.destroyed) respondStatusOnly(stream, code, details);
    };
    stream.on('error', () => undefined);
    const contentType = String(headers[HTTP2_HEADER_CONTENT_TYPE] ?? '');
    if (headers[HTTP2_HEADER_METHOD] !== 'POST' || !contentType.startsWith('application/grpc')) {
      // Not gRPC at all: an HTTP answer, as the gRPC over HTTP/2 spec asks.
      stream.respond({ [HTTP2_HEADER_STATUS]: 415 }, { endStream: true });
      return;
    }
    if (this.draining) return reply(Status.UNAVAILABLE, 'berthd is shutting down');
    const path = String(headers[HTTP2_HEADER_PATH] ?? '');
    const route = this.routes.get(path);
    if (!route) return reply(Status.UNIMPLEMENTED, `the server does not implement the method ${path}`);
    const encoding = headers['grpc-encoding'] as string | undefined;
    const timeoutMs = parseTimeout(headers['grpc-timeout'] as string | undefined);
    const reader = new MessageReader(this.opts.maxReceiveBytes);
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      if (err instanceof GrpcError) reply(err.code, err.details);
      else reply(Status.INTERNAL, (err as Error).message);
      stream.resume();
    };
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        reader.push(chunk);
      } catch (err) {
        fail(err);
      }
    });
    stream.on('end', () => {
      if (failed) return;
      try {
        reader.end();
        if (reader.messages.length !== 1) {
          throw new GrpcError(Status.UNIMPLEMENTED, `${reader.messages.length === 0 ? 'received no request message' : 'received a second request message'} for ${route.path}`);
        }
      } catch (err) {
        return fail(err);
      }
      void this.dispatch(route, stream, reader.messages[0], encoding, timeoutMs).catch(fail);
    });
  }

  private async dispatch(route: Route, stream: http2.ServerHttp2Stream, message: { compressed: boolean; body: Buffer }, encoding: string | undefined, timeoutMs: number | undefined): Promise<void> {
    const bytes = await messageBytes(message, encoding, this.opts.maxReceiveBytes);
    let request: unknown;
    try {
      request = route.deserialize(bytes);
    } catch (err) {
      throw new GrpcError(Status.INVALID_ARGUMENT, `the request message does not parse as ${route.path}'s request: ${(err as Error).message}`);
    }
    if (stream.destroyed) return;
    const call = new ServerCall(request, stream, route, this.opts.maxSendBytes);
    this.calls.add(call);
    let timer: NodeJS.Timeout | undefined;
    const forget = () => {
      this.calls.delete(call);
      clearTimeout(timer);
    };
    call.once('finished', forget);
    stream.once('close', () => {
      // The client reset the stream or went away before the answer: the call is abandoned.
      if (!call.ended) call.cancel();
      forget();
    });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        call.finish({ code: Status.DEADLINE_EXCEEDED, details: 'deadline exceeded' });
        call.cancel();
      }, timeoutMs);
    }
    if (route.responseStream) return (route.impl as StreamImpl)(call);
    (route.impl as UnaryImpl)(call, (err, value) => (err ? call.destroy(err) : call.reply(value)));
  }
}
