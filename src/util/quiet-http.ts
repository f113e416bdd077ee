// Node's http.Server checks its connections' headers and request timeouts from a 30 s interval timer
// that runs from listen() to close(), with connections or without: a wakeup of an idle berthd every
// 30 s for each server (metrics, streaming). berth's servers push that check out of reach (the longest
// interval a timer takes, ~24.8 days) and drop instead a connection silent for IDLE_SOCKET_MS, a timer of
// the socket's own that exists only while the connection does. What is lost: a client trickling a byte
// at a time is no longer cut at headersTimeout (60 s); both servers listen on loopback by default.
import type http from 'node:http';

/** The longest delay Node's timers take (2^31 - 1 ms); more becomes 1 ms. */
const NEVER_MS = 2 ** 31 - 1;

/** How long a connection may stay silent before the server drops it. */
export const IDLE_SOCKET_MS = 60_000;

/** Options for http.createServer / https.createServer: no periodic connection check. */
export const QUIET_SERVER_OPTIONS = { connectionsCheckingInterval: NEVER_MS } as const;

/** Sets the per-connection idle timeout that stands in for the periodic check; returns the server. */
export function dropIdleConnections<S extends http.Server>(server: S): S {
  server.timeout = IDLE_SOCKET_MS;
  return server;
}
