// The one wrapper around every CRI RPC, in the spirit of containerd's instrumented service:
// refuses calls until start-up recovery is done, times and logs each call, records metrics, tracks
// in-flight calls for a graceful shutdown, and maps berth's errors to gRPC status codes.
// Handlers never build gRPC statuses themselves.
import type * as grpc from '@grpc/grpc-js';
import { Status } from './grpc/status';
import type { Logger } from 'pino';
import { errorCodeOf, messageOf, type ErrorCode } from '../errors';
import type { Metrics } from '../metrics/registry';
import type { InflightCalls } from './inflight';

export interface CallContext {
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
  log: Logger;
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;
export type StreamHandler<Req, Res> = (request: Req, ctx: CallContext) => AsyncIterable<Res>;

type HandlerOf<H> =
  H extends grpc.handleUnaryCall<infer Req, infer Res>
    ? UnaryHandler<Req, Res>
    : H extends grpc.handleServerStreamingCall<infer Req, infer Res>
      ? StreamHandler<Req, Res>
      : never;

/** Handlers for a generated `...ServiceHandlers` type; a missing one answers UNIMPLEMENTED. */
export type Handlers<S> = { [K in keyof S]?: HandlerOf<S[K]> };

export interface InstrumentDeps {
  log: Logger;
  metrics: Metrics;
  isReady: () => boolean;
  inflight: InflightCalls;
}

const STATUS_OF: Record<ErrorCode, Status> = {
  NOT_FOUND: Status.NOT_FOUND,
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  UNAVAILABLE: Status.UNAVAILABLE,
  UNIMPLEMENTED: Status.UNIMPLEMENTED,
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  UNKNOWN: Status.UNKNOWN,
  INTERNAL: Status.INTERNAL,
};

export function statusOf(err: unknown): Status {
  return STATUS_OF[errorCodeOf(err)];
}

const statusName = (code: Status): string => Status[code] ?? String(code);

interface CallOutcome {
  code: Status;
  details?: string;
}

type Invoke = (ctx: CallContext) => Promise<void>;

class Instrumenter {
  constructor(
    private readonly deps: InstrumentDeps,
    private readonly service: string,
  ) {}

  /**
   * Runs one call: readiness, cancellation, timing, logging, metrics, error mapping. The event loop's
   * delay is sampled while unary calls run; a server stream (GetContainerEvents) may stay open for
   * days and would keep the sampler's timer going at rest.
   */
  async run(method: string, call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, invoke: Invoke | undefined, sampleLoop = true): Promise<CallOutcome> {
    const started = process.hrtime.bigint();
    const base = this.deps.log;
    let child: Logger | undefined;
    // A child logger per call costs more than most calls: made only when a handler logs.
    const log = (): Logger => (child ??= base.child({ rpc: method }));
    // The AbortController too is made only when a handler asks for the signal (few do).
    let abort: AbortController | undefined;
    let cancelled = false;
    const cancelError = () => new Error(`${method} cancelled by the client`);
    call.on('cancelled', () => {
      cancelled = true;
      abort?.abort(cancelError());
    });
    const signal = (): AbortSignal => {
      if (!abort) {
        abort = new AbortController();
        if (cancelled) abort.abort(cancelError());
      }
      return abort.signal;
    };
    const done = this.deps.inflight.enter();
    const sampled = sampleLoop ? this.deps.metrics.loopDelay.begin() : () => {};
    let outcome: CallOutcome;
    try {
      if (!invoke) {
        outcome = { code: Status.UNIMPLEMENTED, details: `${method} is not implemented by berth` };
      } else if (!this.deps.isReady()) {
        outcome = { code: Status.UNAVAILABLE, details: `berthd is starting: recovery has not finished, ${method} refused` };
      } else {
        await invoke({
          get signal() {
            return signal();
          },
          get log() {
            return log();
          },
        });
        outcome = { code: Status.OK };
      }
    } catch (err) {
      outcome = { code: statusOf(err), details: messageOf(err) };
      if (outcome.code === Status.INTERNAL) log().error({ err }, `${method} failed`);
    } finally {
      done();
      sampled();
    }
    this.record(method, started, outcome, log);
    return outcome;
  }

  private record(method: string, started: bigint, outcome: CallOutcome, log: () => Logger): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const code = statusName(outcome.code);
    const labels = { service: this.service, method, code };
    this.deps.metrics.rpcDuration.observe(labels, seconds);
    if (outcome.code !== Status.OK) this.deps.metrics.rpcErrors.inc(labels);
    const ok = outcome.code === Status.OK;
    if (ok && !this.deps.log.isLevelEnabled('debug')) return;
    const fields = { code, ms: Math.round(seconds * 1e6) / 1e3, ...(outcome.details ? { error: outcome.details } : {}) };
    if (ok) log().debug(fields, method);
    else log().info(fields, method);
  }
}

function toServiceError(outcome: CallOutcome): Partial<grpc.ServiceError> {
  return { code: outcome.code, details: outcome.details ?? '', message: outcome.details ?? '' };
}

function unaryImpl(ins: Instrumenter, method: string, handler: UnaryHandler<unknown, unknown> | undefined) {
  return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void => {
    let response: unknown;
    const invoke: Invoke | undefined = handler
      ? async (ctx) => {
          response = await handler(call.request, ctx);
        }
      : undefined;
    void ins.run(method, call, invoke).then((outcome) => {
      if (outcome.code === Status.OK) callback(null, response);
      else callback(toServiceError(outcome), null);
    });
  };
}

function untilDrainedOrCancelled(call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      resolve();
    };
    call.once('drain', done);
    call.once('cancelled', done);
  });
}

function streamImpl(ins: Instrumenter, method: string, handler: StreamHandler<unknown, unknown> | undefined) {
  return (call: grpc.ServerWritableStream<unknown, unknown>): void => {
    const invoke: Invoke | undefined = handler
      ? async (ctx) => {
          const messages = handler(call.request, ctx);
          // The handler has set up what it streams from: the client is told the stream is open.
          (call as unknown as { sendMetadata(): void }).sendMetadata();
          for await (const message of messages) {
            if (ctx.signal.aborted) break;
            // A full buffer waits for the client to read, or for it to go away.
            if (!call.write(message)) await untilDrainedOrCancelled(call);
          }
        }
      : undefined;
    void ins.run(method, call, invoke, false).then((outcome) => {
      if (outcome.code === Status.OK) call.end();
      else call.destroy(toServiceError(outcome) as grpc.ServiceError);
    });
  };
}

/** Builds the grpc-js implementation of a service: every method of its definition, wrapped. */
export function instrumentService<S>(
  serviceName: string,
  definition: grpc.ServiceDefinition,
  handlers: Handlers<S>,
  deps: InstrumentDeps,
): grpc.UntypedServiceImplementation {
  const ins = new Instrumenter(deps, serviceName);
  const table = handlers as Record<string, ((req: unknown, ctx: CallContext) => unknown) | undefined>;
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [method, def] of Object.entries(definition)) {
    const handler = table[method];
    if (def.requestStream) throw new Error(`${serviceName}.${method}: client streaming is not part of the CRI`);
    impl[method] = def.responseStream
      ? streamImpl(ins, method, handler as StreamHandler<unknown, unknown> | undefined)
      : unaryImpl(ins, method, handler as UnaryHandler<unknown, unknown> | undefined);
  }
  return impl;
}
