// The streaming server the CRI's Exec, Attach and PortForward responses point to: it hands out
// single-use URLs for registered requests and serves them over SPDY/3.1 or WebSocket, as the kubelet's
// k8s.io/kubelet/pkg/cri/streaming server does. See docs/streaming.md.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import pino, { type Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { FailedPreconditionError } from '../errors';
import type { StreamingBackend } from './backend';
import { replyAndClose, switchProtocols } from './http-reply';
import {
  HEADER_ACCEPTED_PROTOCOL_VERSIONS,
  HEADER_PROTOCOL_VERSION,
  SPDY_PORT_FORWARD_PROTOCOLS,
  SPDY_REMOTE_COMMAND_PROTOCOLS,
  headerList,
  negotiate,
  negotiateWsCommand,
  negotiateWsPortForward,
  spdyCommandProtocol,
  wsCommandProtocolNames,
  wsPortForwardProtocolNames,
} from './protocols';
import { classify, type Registered, type StreamingRequest } from './requests';
import { within, type ActiveSession, type SessionContext } from './session-context';
import { serveSpdyCommand } from './spdy-remote-command';
import { serveSpdyPortForward } from './spdy-port-forward';
import { TokenCache } from './token-cache';
import { serveWsCommand } from './ws-remote-command';
import { serveWsPortForward } from './ws-port-forward';
import { dropIdleConnections, QUIET_SERVER_OPTIONS } from '../util/quiet-http';

export interface StreamingServerOptions {
  backend: StreamingBackend;
  /** Address to listen on; default 127.0.0.1. */
  address?: string;
  /** Port to listen on; default 0, a free port. */
  port?: number;
  /** Serve HTTPS with these PEM files. */
  tls?: { certFile: string; keyFile: string };
  /** Base of the URLs handed out, when clients reach the server by another name; default http(s)://address:port. */
  baseUrl?: string;
  /** How long a registered URL stays usable; default 1 minute (kubelet's). */
  tokenTtlMs?: number;
  /** Most registered, unused URLs at once; default 1000 (kubelet's). */
  maxPendingTokens?: number;
  /** A session with no traffic for this long is closed; default 4 hours (kubelet's stream idle timeout). */
  idleTimeoutMs?: number;
  /** How long a SPDY client has to open its streams; default 30 seconds (kubelet's). */
  streamCreationTimeoutMs?: number;
  log?: Logger;
}

/** How long close() waits for backends to settle once their sessions are closed. */
const CLOSE_SETTLE_MS = 5000;
const ROUTE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]+)$/;

export class StreamingServer {
  private readonly server: http.Server;
  private readonly tokens: TokenCache<Registered>;
  private readonly sessions = new Set<ActiveSession>();
  /** The subprotocol chosen for each WebSocket upgrade in progress, for ws's handleProtocols hook. */
  private readonly chosenWsProtocol = new WeakMap<http.IncomingMessage, string>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 16 * 1024 * 1024,
    // false answers without a subprotocol, for a client that named none.
    handleProtocols: (_offered, req) => this.chosenWsProtocol.get(req) || false,
  });
  private readonly ctx: SessionContext;
  private base: string | undefined;
  private closing = false;

  constructor(private readonly opts: StreamingServerOptions) {
    this.tokens = new TokenCache(opts.tokenTtlMs ?? 60_000, opts.maxPendingTokens ?? 1000);
    this.ctx = {
      backend: opts.backend,
      idleTimeoutMs: opts.idleTimeoutMs ?? 4 * 3600_000,
      streamCreationTimeoutMs: opts.streamCreationTimeoutMs ?? 30_000,
      log: opts.log ?? pino({ level: 'silent' }),
    };
    this.server = dropIdleConnections(
      opts.tls
        ? https.createServer({ ...QUIET_SERVER_OPTIONS, cert: fs.readFileSync(opts.tls.certFile), key: fs.readFileSync(opts.tls.keyFile) })
        : http.createServer(QUIET_SERVER_OPTIONS),
    );
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onPlainRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** Starts listening; resolves with the bound address. */
  async listen(): Promise<AddressInfo> {
    const host = this.opts.address ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    const hostPart = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    this.base = (this.opts.baseUrl ?? `${this.opts.tls ? 'https' : 'http'}://${hostPart}:${addr.port}`).replace(/\/+$/, '');
    this.ctx.log.info({ url: this.base }, 'streaming server listening');
    return addr;
  }

  /**
   * Registers a request and returns its single-use URL (…/exec/TOKEN, …/attach/TOKEN or
   * …/portforward/TOKEN). Throws InvalidArgumentError for a request no protocol can serve.
   */
  register(req: StreamingRequest): string {
    if (!this.base || this.closing) throw new FailedPreconditionError('the streaming server is not running');
    const registered = classify(req);
    return `${this.base}/${registered.kind}/${this.tokens.insert(registered)}`;
  }

  /** Open sessions (upgraded connections). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Stops listening, forgets unused URLs and ends every open session (each backend's signal aborts). */
  async close(): Promise<void> {
    this.closing = true;
    this.tokens.clear();
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    const sessions = [...this.sessions];
    await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
    // Their backends have been told (signal); give them a moment to settle, but never hang on one.
    await within(Promise.all(sessions.map((s) => s.done)), CLOSE_SETTLE_MS);
    this.wss.close();
    await stopped;
  }

  /** Finds the request a path names, consuming its token whatever happens next (as the kubelet). */
  private lookup(req: http.IncomingMessage): Registered | undefined {
    const path = (req.url ?? '').split('?')[0];
    const m = ROUTE.exec(path);
    if (!m) return undefined;
    const found = this.tokens.consume(m[2]);
    return found?.kind === m[1] ? found : undefined;
  }

  private onPlainRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'POST') {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (!this.lookup(req)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    res.writeHead(400, { 'content-type': 'text/plain' }).end('unable to upgrade: missing upgrade headers in request\n');
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.closing) return replyAndClose(socket, 503, 'the streaming server is shutting down');
    if (req.method !== 'GET' && req.method !== 'POST') return replyAndClose(socket, 405, 'method not allowed');
    const registered = this.lookup(req);
    if (!registered) return replyAndClose(socket, 404, '404 page not found');
    const upgrade = (req.headers.upgrade ?? '').toLowerCase();
    if (upgrade === 'websocket') return this.upgradeWebSocket(req, socket, head, registered);
    if (!upgrade.includes('spdy/3.1')) {
      return replyAndClose(socket, 400, 'unable to upgrade: missing upgrade headers in request');
    }
    this.upgradeSpdy(req, socket as Socket, head, registered);
  }

  private upgradeSpdy(req: http.IncomingMessage, socket: Socket, head: Buffer, registered: Registered): void {
    const offered = headerList(req.headers[HEADER_PROTOCOL_VERSION]);
    const supported = registered.kind === 'portforward' ? SPDY_PORT_FORWARD_PROTOCOLS : SPDY_REMOTE_COMMAND_PROTOCOLS;
    if (!offered.length) {
      return replyAndClose(socket, 400, 'unable to upgrade: X-Stream-Protocol-Version is required');
    }
    const protocol = negotiate(offered, supported);
    if (!protocol) {
      return replyAndClose(
        socket,
        403,
        `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${supported.join(' ')}]`,
        { [HEADER_ACCEPTED_PROTOCOL_VERSIONS]: supported.join(', ') },
      );
    }
    switchProtocols(socket, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocol });
    if (head.length) socket.unshift(head);
    this.track(
      registered.kind === 'portforward'
        ? serveSpdyPortForward(socket, registered.request.podId, this.ctx)
        : serveSpdyCommand(socket, spdyCommandProtocol(protocol), registered, this.ctx),
    );
  }

  private upgradeWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, registered: Registered): void {
    const header = req.headers['sec-websocket-protocol'];
    const command = registered.kind === 'portforward' ? undefined : negotiateWsCommand(header);
    const portForward = registered.kind === 'portforward' ? negotiateWsPortForward(header) : undefined;
    const chosen = command ?? portForward;
    if (!chosen) {
      const names = registered.kind === 'portforward' ? wsPortForwardProtocolNames() : wsCommandProtocolNames();
      return replyAndClose(socket, 403, `requested protocol(s) are not supported: [${headerList(header).join(' ')}]; supports [${names.join(' ')}]`);
    }
    this.chosenWsProtocol.set(req, chosen.name);
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (registered.kind === 'portforward') {
        this.track(serveWsPortForward(ws, portForward?.base64 ?? false, registered.request, this.ctx));
      } else if (command) {
        this.track(serveWsCommand(ws, command, registered, this.ctx));
      }
    });
  }

  private track(session: ActiveSession): void {
    this.sessions.add(session);
    const forget = (): void => void this.sessions.delete(session);
    session.done.then(forget, forget);
  }
}
