// One HTTP(S) request to a registry, streaming: connect and header timeouts, an AbortSignal,
// redirects followed (blob downloads are often redirected to storage), TLS per endpoint.
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { ResourceExhaustedError } from '../../errors';

export interface RequestOptions {
  method?: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Time allowed to connect and receive the response headers. */
  timeoutMs: number;
  insecureTls?: boolean;
  ca?: Buffer;
  maxRedirects?: number;
}

export class TransportError extends Error {
  constructor(
    message: string,
    readonly url: string,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

function once(url: URL, opts: RequestOptions): Promise<IncomingMessage> {
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method: opts.method ?? 'GET',
        headers: { 'user-agent': 'berth', ...opts.headers },
        signal: opts.signal,
        ...(url.protocol === 'https:' ? { rejectUnauthorized: !opts.insecureTls, ...(opts.ca ? { ca: opts.ca } : {}) } : {}),
      },
      (res) => {
        clearTimeout(timer);
        resolve(res);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new TransportError(`no response from ${url.origin} within ${opts.timeoutMs / 1000}s`, url.href));
    }, opts.timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof TransportError || opts.signal?.aborted ? err : new TransportError(`${url.origin}: ${err.message}`, url.href));
    });
    req.end(opts.body);
  });
}

/** Sends the request, following redirects; the caller consumes (or destroys) the response body. */
export async function request(target: string, opts: RequestOptions): Promise<IncomingMessage> {
  let url = new URL(target);
  const origin = url.origin;
  for (let hop = 0; ; hop++) {
    const res = await once(url, opts);
    const location = res.headers.location;
    if (res.statusCode && [301, 302, 303, 307, 308].includes(res.statusCode) && location) {
      res.resume();
      if (hop >= (opts.maxRedirects ?? 5)) throw new TransportError(`too many redirects from ${target}`, target);
      url = new URL(location, url);
      // Credentials are for the registry, never for the storage it redirects to.
      if (url.origin !== origin && opts.headers?.authorization) {
        const { authorization: _drop, ...rest } = opts.headers;
        opts = { ...opts, headers: rest };
      }
      continue;
    }
    return res;
  }
}

/** A response's (or any stream's) bytes, up to `limit`: more is RESOURCE_EXHAUSTED. */
export async function readBody(res: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      res.destroy();
      throw new ResourceExhaustedError(`response body larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
