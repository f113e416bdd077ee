// A small registry we control completely (node:http on loopback), for what a real one will not do:
// stall or cut a blob, redirect blobs, demand bearer tokens from a token service, serve exactly the bytes a test wants.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BuiltImage } from './oci/image';

export interface FakeRegistryOptions {
  /** Require `Authorization: Bearer <token>`; the token service is at /token on the same server. */
  bearer?: { username: string; password: string; token: string };
  /** Send this many bytes of each layer blob, then stall without closing. */
  stallAfterBytes?: number;
  /** Send this many bytes of each layer blob, then cut the connection. */
  cutAfterBytes?: number;
  /** Answer blob GETs with a 307 to /storage/<digest> on the same server, as registries backed by object storage do. */
  redirectBlobs?: boolean;
  /** Answer the first GET of each layer blob with this status (a registry's passing hiccup). */
  failLayerOnceWith?: number;
}

export interface FakeRegistry {
  host: string;
  requests: string[];
  tokenRequests: number;
  stop(): Promise<void>;
}

export async function startFakeRegistry(repo: string, image: BuiltImage, opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const blobs = new Map([image.config, ...image.layers].map((b) => [b.digest, b]));
  const layerDigests = new Set(image.layers.map((l) => l.digest));
  const state = { requests: [] as string[], tokenRequests: 0 };
  const stalled: http.ServerResponse[] = [];
  const failedOnce = new Set<string>();
  let host = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    state.requests.push(`${req.method} ${url.pathname}`);
    if (url.pathname === '/token' && opts.bearer) {
      state.tokenRequests++;
      const expected = `Basic ${Buffer.from(`${opts.bearer.username}:${opts.bearer.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected || url.searchParams.get('scope') !== `repository:${repo}:pull`) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: opts.bearer.token, expires_in: 300 }));
      return;
    }
    if (opts.bearer && req.headers.authorization !== `Bearer ${opts.bearer.token}`) {
      res
        .writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="fake",scope="repository:${repo}:pull"` })
        .end();
      return;
    }
    if (url.pathname === '/v2/') {
      res.writeHead(200).end('{}');
      return;
    }
    const manifest = new RegExp(`^/v2/${repo}/manifests/(.+)$`).exec(url.pathname);
    if (manifest) {
      res.writeHead(200, { 'content-type': image.manifest.mediaType, 'docker-content-digest': image.manifest.digest });
      res.end(image.manifest.data);
      return;
    }
    const blob = new RegExp(`^/v2/${repo}/blobs/(sha256:[a-f0-9]{64})$`).exec(url.pathname);
    if (blob && opts.failLayerOnceWith && layerDigests.has(blob[1]) && !failedOnce.has(blob[1])) {
      failedOnce.add(blob[1]);
      res.writeHead(opts.failLayerOnceWith).end();
      return;
    }
    if (blob && opts.redirectBlobs && blobs.has(blob[1])) {
      res.writeHead(307, { location: `/storage/${blob[1]}` }).end();
      return;
    }
    const stored = /^\/storage\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
    const found = blob ? blobs.get(blob[1]) : stored && opts.redirectBlobs ? blobs.get(stored[1]) : undefined;
    if (found) {
      res.writeHead(200, { 'content-length': found.size, 'content-type': 'application/octet-stream' });
      if (opts.stallAfterBytes !== undefined && layerDigests.has(found.digest)) {
        res.write(found.data.subarray(0, opts.stallAfterBytes));
        stalled.push(res);
        return;
      }
      if (opts.cutAfterBytes !== undefined && layerDigests.has(found.digest)) {
        res.write(found.data.subarray(0, opts.cutAfterBytes), () => res.destroy());
        return;
      }
      res.end(found.data);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    get requests() {
      return state.requests;
    },
    get tokenRequests() {
      return state.tokenRequests;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const r of stalled) r.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
