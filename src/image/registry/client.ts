// A client of the OCI distribution API (Docker Registry HTTP API v2): manifests and blobs, through
// mirrors with fallback, with anonymous, basic and bearer-token auth.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { BerthConfig } from '../../config/schema';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError, UnauthenticatedError, UnavailableError } from '../../errors';
import { formatReference, manifestReference, type ImageReference } from '../reference';
import { basicHeader, credentialsFromFile, parseChallenge, TokenCache, userPassword, type Credentials } from './auth';
import { endpointsFor, type Endpoint } from './hosts';
import { readBody, request, TransportError } from './http';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from './manifest';

export type { Credentials } from './auth';

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_ACCEPTED_AUTH = 1000;

export interface FetchOptions {
  credentials?: Credentials;
  signal?: AbortSignal;
}

export interface FetchedManifest {
  mediaType: string;
  digest: string;
  body: Buffer;
}

export interface OpenedBlob {
  stream: Readable;
  size: number | undefined;
  endpoint: string;
}

/** A blob GET someone else may send (berth-unpack): where, with which headers, and how TLS is checked. */
export interface DirectBlobRequest {
  url: string;
  headers: Record<string, string>;
  caFile?: string;
  insecureTls: boolean;
}

/** An upstream answer that settles the question (not found, refused): no other endpoint is tried. */
class FinalError extends Error {
  constructor(readonly error: Error) {
    super(error.message);
  }
}

export class RegistryClient {
  private readonly tokens = new TokenCache();
  /** The Authorization each endpoint, repository and set of credentials last accepted. */
  private readonly acceptedAuth = new Map<string, string>();

  constructor(
    private readonly config: BerthConfig['image'],
    private readonly log: Logger,
  ) {}

  private credentialsFor(ref: ImageReference, given: Credentials | undefined): Credentials | undefined {
    return given ?? credentialsFromFile(this.config.auth_file, ref.registry);
  }

  /** Fetches a token for the challenge; tokens are cached per realm, service and scope. */
  private async bearer(challenge: Record<string, string>, ref: ImageReference, creds: Credentials | undefined, ep: Endpoint, signal?: AbortSignal): Promise<string> {
    if (creds?.registryToken) return creds.registryToken;
    const realm = challenge.realm;
    if (!realm) throw new UnauthenticatedError(`registry ${ref.registry} asked for a bearer token without a realm`);
    const scope = challenge.scope ?? `repository:${ref.repository}:pull`;
    const key = `${realm}|${challenge.service ?? ''}|${scope}|${userPassword(creds)?.username ?? ''}`;
    const cached = this.tokens.get(key);
    if (cached) return cached;
    const url = new URL(realm);
    let res: IncomingMessage;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, service: challenge.service ?? '', scope, client_id: 'berth' });
      res = await request(url.href, { method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, signal, timeoutMs: REQUEST_TIMEOUT_MS, insecureTls: ep.insecureTls, ca: ep.ca });
    } else {
      if (challenge.service) url.searchParams.set('service', challenge.service);
      url.searchParams.set('scope', scope);
      const auth = basicHeader(creds);
      res = await request(url.href, { headers: auth ? { authorization: auth } : {}, signal, timeoutMs: REQUEST_TIMEOUT_MS, insecureTls: ep.insecureTls, ca: ep.ca });
    }
    const body = await readBody(res, 1024 * 1024);
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new FinalError(new UnauthenticatedError(`authentication failed for ${ref.registry}: the token service refused the credentials${creds ? ` of user ${userPassword(creds)?.username ?? '(token)'}` : ''}`));
    }
    if (res.statusCode !== 200) throw new TransportError(`token service ${url.origin} answered HTTP ${res.statusCode}`, url.href);
    const doc = JSON.parse(body.toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
    const token = doc.token ?? doc.access_token;
    if (!token) throw new TransportError(`token service ${url.origin} returned no token`, url.href);
    this.tokens.set(key, token, doc.expires_in);
    return token;
  }

  private authKey(ep: Endpoint, ref: ImageReference, creds: Credentials | undefined): string {
    return `${ep.url}|${ref.repository}|${createHash('sha256').update(JSON.stringify(creds ?? null)).digest('hex')}`;
  }

  /**
   * The GET of a blob from the first endpoint, with the Authorization it last accepted for these
   * credentials (the manifest fetch of the same pull has just been accepted) and the endpoint's TLS
   * settings. Whoever sends it falls back to openBlob on any final answer but a 200.
   */
  directBlobRequest(ref: ImageReference, digest: string, opts: FetchOptions = {}): DirectBlobRequest {
    const ep = endpointsFor(ref.registry, this.config.registries)[0];
    const auth = this.acceptedAuth.get(this.authKey(ep, ref, this.credentialsFor(ref, opts.credentials)));
    return {
      url: `${ep.url}/v2/${ref.repository}/blobs/${digest}`,
      headers: auth ? { authorization: auth } : {},
      ...(ep.caFile ? { caFile: ep.caFile } : {}),
      insecureTls: ep.insecureTls,
    };
  }

  /** One request to one endpoint, answering an auth challenge once. */
  private async send(ep: Endpoint, path: string, ref: ImageReference, headers: Record<string, string>, opts: FetchOptions, method: 'GET' | 'HEAD' = 'GET'): Promise<IncomingMessage> {
    const creds = this.credentialsFor(ref, opts.credentials);
    const url = `${ep.url}/v2/${ref.repository}${path}`;
    const go = (auth?: string) => request(url, { method, headers: { ...headers, ...(auth ? { authorization: auth } : {}) }, signal: opts.signal, timeoutMs: REQUEST_TIMEOUT_MS, insecureTls: ep.insecureTls, ca: ep.ca });
    let res = await go();
    if (res.statusCode !== 401) return res;
    res.resume();
    const challenge = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
    let auth: string | undefined;
    if (challenge?.scheme === 'bearer') auth = `Bearer ${await this.bearer(challenge.params, ref, creds, ep, opts.signal)}`;
    else if (challenge?.scheme === 'basic') auth = basicHeader(creds);
    if (!auth) throw new FinalError(new UnauthenticatedError(`registry ${ref.registry} requires authentication and no credentials were given`));
    res = await go(auth);
    if (res.statusCode === 401 || res.statusCode === 403) {
      res.resume();
      const who = userPassword(creds)?.username;
      throw new FinalError(new UnauthenticatedError(`authentication failed for ${ref.registry}${who ? ` as user ${who}` : ''}: the registry refused the credentials`));
    }
    if (this.acceptedAuth.size >= MAX_ACCEPTED_AUTH) this.acceptedAuth.clear(); // a cache: any entry can be learnt again
    this.acceptedAuth.set(this.authKey(ep, ref, creds), auth);
    return res;
  }

  /** Tries each endpoint in order; mirrors fall through on any failure, the registry's own answer is final. */
  private async withEndpoints<T>(ref: ImageReference, what: string, fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    let lastError: Error | undefined;
    const failures: string[] = [];
    for (const ep of endpointsFor(ref.registry, this.config.registries)) {
      try {
        return await fn(ep);
      } catch (err) {
        if (err instanceof FinalError && !ep.mirror) throw err.error;
        if (!(err instanceof FinalError) && !(err instanceof TransportError) && !(err instanceof NotFoundError)) throw err;
        if (err instanceof NotFoundError && !ep.mirror) throw err;
        lastError = err instanceof FinalError ? err.error : err;
        failures.push(`${ep.mirror ? 'mirror ' : ''}${ep.url}: ${lastError.message}`);
        this.log.debug({ endpoint: ep.url, error: lastError.message }, `${what}: endpoint failed, trying the next`);
      }
    }
    if (lastError instanceof UnauthenticatedError) throw lastError;
    // Every endpoint's reason: a mirror's certificate error must not hide behind the upstream's DNS error.
    throw new UnavailableError(`registry ${ref.registry} unreachable for ${what}: ${failures.join('; ') || 'no endpoint'}`);
  }

  private async manifestAt(ep: Endpoint, ref: ImageReference, reference: string, opts: FetchOptions): Promise<FetchedManifest> {
    const res = await this.send(ep, `/manifests/${reference}`, ref, { accept: MANIFEST_ACCEPT }, opts);
    if (res.statusCode === 404) {
      res.resume();
      throw new NotFoundError(`image ${formatReference(ref)} not found: ${ep.mirror ? `mirror ${ep.url}` : `registry ${ref.registry}`} has no manifest ${reference}`);
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new TransportError(`${ep.url} answered HTTP ${res.statusCode} for manifest ${reference}`, ep.url);
    }
    const body = await readBody(res, MAX_MANIFEST_BYTES).catch((err: Error) => {
      // Over the limit is the registry's document's fault; a connection lost half-way is the endpoint's.
      if (err instanceof ResourceExhaustedError) throw new ResourceExhaustedError(`manifest ${reference} of ${formatReference(ref)}: ${err.message} (the limit of a manifest)`);
      throw new TransportError(`reading manifest ${reference} from ${ep.url}: ${err.message}`, ep.url);
    });
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const expected = reference.startsWith('sha256:') ? reference : String(res.headers['docker-content-digest'] ?? digest);
    if (digest !== expected) {
      throw new InvalidArgumentError(`manifest digest mismatch for ${formatReference(ref)}: expected ${expected}, got ${digest}`);
    }
    const mediaType = String(res.headers['content-type'] ?? '').split(';')[0].trim();
    return { mediaType, digest, body };
  }

  getManifest(ref: ImageReference, opts: FetchOptions = {}): Promise<FetchedManifest> {
    return this.withEndpoints(ref, `manifest of ${formatReference(ref)}`, (ep) => this.manifestAt(ep, ref, manifestReference(ref), opts));
  }

  getManifestByDigest(ref: ImageReference, digest: string, opts: FetchOptions = {}): Promise<FetchedManifest> {
    return this.withEndpoints(ref, `manifest ${digest}`, (ep) => this.manifestAt(ep, ref, digest, opts));
  }

  openBlob(ref: ImageReference, digest: string, opts: FetchOptions = {}): Promise<OpenedBlob> {
    return this.withEndpoints(ref, `blob ${digest}`, async (ep) => {
      const res = await this.send(ep, `/blobs/${digest}`, ref, {}, opts);
      if (res.statusCode === 404) {
        res.resume();
        throw new NotFoundError(`blob ${digest} of ${formatReference(ref)} not found at ${ep.url}`);
      }
      if (res.statusCode !== 200) {
        res.resume();
        throw new TransportError(`${ep.url} answered HTTP ${res.statusCode} for blob ${digest}`, ep.url);
      }
      const length = Number(res.headers['content-length']);
      return { stream: res, size: Number.isFinite(length) ? length : undefined, endpoint: ep.url };
    });
  }
}
