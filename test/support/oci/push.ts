// Pushes blobs and manifests to a registry with the Registry HTTP API v2: HEAD to skip a blob the
// registry has, monolithic upload (POST /v2/<name>/blobs/uploads/, then PUT <location>?digest=),
// manifests PUT by digest and by tag. Optional basic auth. Plain HTTP (the test registry on loopback).
import type { Blob, BuiltImage } from './image';

export interface PushTarget {
  /** host:port of the registry (plain HTTP). */
  host: string;
  repository: string;
  auth?: { username: string; password: string };
}

function headers(target: PushTarget, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { ...extra };
  if (target.auth) h.authorization = `Basic ${Buffer.from(`${target.auth.username}:${target.auth.password}`).toString('base64')}`;
  return h;
}

/** A push the registry refused; `status` is the HTTP status (401 without or with wrong credentials). */
export class PushError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'PushError';
  }
}

async function check(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new PushError(`${what}: HTTP ${res.status} ${(await res.text()).trim()}`, res.status);
  return res;
}

/** Uploads a blob unless the registry has it; returns whether it uploaded. */
export async function pushBlob(target: PushTarget, blob: Pick<Blob, 'digest' | 'data'>): Promise<boolean> {
  const base = `http://${target.host}/v2/${target.repository}/blobs`;
  const head = await fetch(`${base}/${blob.digest}`, { method: 'HEAD', headers: headers(target) });
  if (head.ok) return false;
  const start = await check(await fetch(`${base}/uploads/`, { method: 'POST', headers: headers(target) }), `start upload of ${blob.digest}`);
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (!location) throw new PushError(`start upload of ${blob.digest}: no Location header`, start.status);
  const url = new URL(location, `http://${target.host}`);
  url.searchParams.set('digest', blob.digest);
  const put = await check(
    await fetch(url, {
      method: 'PUT',
      headers: headers(target, { 'content-type': 'application/octet-stream' }),
      body: blob.data,
    }),
    `upload of ${blob.digest}`,
  );
  await put.arrayBuffer();
  return true;
}

/** PUTs a manifest (or index) under a tag or a digest; returns the digest the registry reports. */
export async function pushManifest(target: PushTarget, reference: string, manifest: Pick<Blob, 'mediaType' | 'digest' | 'data'>): Promise<string> {
  const res = await check(
    await fetch(`http://${target.host}/v2/${target.repository}/manifests/${reference}`, {
      method: 'PUT',
      headers: headers(target, { 'content-type': manifest.mediaType }),
      body: manifest.data,
    }),
    `push of manifest ${reference}`,
  );
  await res.arrayBuffer();
  return res.headers.get('docker-content-digest') ?? manifest.digest;
}

/** Pushes the image's blobs, its manifest by digest and under each tag; returns the manifest digest. */
export async function pushImage(target: PushTarget, image: BuiltImage, tags: readonly string[]): Promise<string> {
  await pushBlob(target, image.config);
  for (const l of image.layers) await pushBlob(target, l);
  const digest = await pushManifest(target, image.manifest.digest, image.manifest);
  if (digest !== image.manifest.digest) throw new Error(`registry stored manifest ${digest}, expected ${image.manifest.digest}`);
  for (const tag of tags) await pushManifest(target, tag, image.manifest);
  return digest;
}

/** Pushes several platform images and an index over them; returns the index digest. */
export async function pushIndex(target: PushTarget, images: readonly BuiltImage[], index: Blob, tags: readonly string[]): Promise<string> {
  for (const image of images) await pushImage(target, image, []);
  const digest = await pushManifest(target, index.digest, index);
  for (const tag of tags) await pushManifest(target, tag, index);
  return digest;
}
