// Port forwarding over SPDY (portforward.k8s.io): each forwarded connection is a pair of streams, error
// and data, tied by a requestID header and naming the port in a port header. Pairs run independently for
// as long as the client keeps the connection open, as in the kubelet's httpStreamHandler.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { messageOf } from '../errors';
import type { StreamingBackend } from './backend';
import type { ActiveSession, SessionContext } from './session-context';
import { headerValue, type SpdyHeaders } from './spdy/header-codec';
import { SpdySession } from './spdy/session';
import { RstStatus } from './spdy/frames';
import type { SpdyStream } from './spdy/stream';

interface StreamPair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** Why a stream cannot be part of a port forward, or undefined when it can. */
function invalidStream(headers: SpdyHeaders): string | undefined {
  const port = headerValue(headers, 'port');
  if (!port) return '"port" header is required';
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) return `unable to parse "${port}" as a port`;
  const type = headerValue(headers, 'streamtype');
  if (!type) return '"streamType" header is required';
  if (type !== 'error' && type !== 'data') return `invalid stream type "${type}"`;
  return undefined;
}

/** Clients older than the requestID header get the kubelet's guess from consecutive stream IDs. */
function requestIdOf(stream: SpdyStream): string {
  const id = headerValue(stream.headers, 'requestid');
  if (id) return id;
  return String(headerValue(stream.headers, 'streamtype') === 'error' ? stream.id : stream.id - 2);
}

export function serveSpdyPortForward(socket: Socket, podId: string, ctx: SessionContext): ActiveSession {
  const log = ctx.log.child({ session: 'portforward', podId });
  const pairs = new Map<string, StreamPair>();
  const session: SpdySession = new SpdySession(socket, {
    isServer: true,
    idleTimeoutMs: ctx.idleTimeoutMs,
    onStream: (stream) => {
      const invalid = invalidStream(stream.headers);
      if (invalid) {
        log.info({ stream: stream.id, reason: invalid }, 'port forward stream refused');
        return false;
      }
      addToPair(stream);
      return true;
    },
  });
  const closed = new Promise<void>((resolve) => session.once('close', resolve));

  const addToPair = (stream: SpdyStream): void => {
    const requestId = requestIdOf(stream);
    let pair = pairs.get(requestId);
    if (!pair) {
      const created: StreamPair = { requestId, timer: setTimeout(() => pairTimedOut(created), ctx.streamCreationTimeoutMs) };
      pairs.set(requestId, (pair = created));
    }
    const type = headerValue(stream.headers, 'streamtype') === 'error' ? 'error' : 'data';
    if (pair[type]) {
      pair.error?.write(`error processing stream for request ${requestId}: ${type} stream already assigned`);
      return;
    }
    pair[type] = stream;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      void forward(pair.data, pair.error, podId, ctx.backend, session, log);
    }
  };

  const pairTimedOut = (pair: StreamPair): void => {
    pairs.delete(pair.requestId);
    const message = `timed out waiting for streams of request ${pair.requestId}`;
    log.info({ requestId: pair.requestId }, message);
    pair.error?.end(message);
    pair.data?.reset(RstStatus.CANCEL);
  };

  session.once('close', () => {
    for (const pair of pairs.values()) clearTimeout(pair.timer);
  });
  return { close: () => session.close(), done: closed };
}

async function forward(
  data: SpdyStream,
  error: SpdyStream,
  podId: string,
  backend: StreamingBackend,
  session: SpdySession,
  log: Logger,
): Promise<void> {
  const port = Number(headerValue(data.headers, 'port'));
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  session.once('close', stop);
  data.once('close', stop);
  try {
    await backend.portForward(podId, port, data, abort.signal);
  } catch (err) {
    // The target resetting or not reading is that connection's problem; anything else ends the client's.
    const code = (err as NodeJS.ErrnoException).code;
    const closeConnection = code !== 'EPIPE' && code !== 'ECONNRESET';
    const message = `error forwarding port ${port} to pod ${podId}, uid : ${messageOf(err)}`;
    log.info({ port, err: messageOf(err) }, 'port forward failed');
    if (!error.destroyed) error.write(`${JSON.stringify(closeConnection ? { closeConnection, message } : { message })}\n`);
  } finally {
    session.off('close', stop);
    data.off('close', stop);
    if (!data.destroyed && !data.writableEnded) data.end();
    if (!error.destroyed && !error.writableEnded) error.end();
  }
}
