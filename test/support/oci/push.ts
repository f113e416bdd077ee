// Pushes blobs and manifests to a registry with the Registry HTTP API v2 (monolithic uploads).
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

async function check(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

export async function pushBlob(target: PushTarget, blob: Pick<Blob, 'digest' | 'data'>): Promise<void> {
  const base = `http://${target.host}/v2/${target.repository}/blobs`;
  const head = await fetch(`${base}/${blob.digest}`, { method: 'HEAD', headers: headers(target) });
  if (head.ok) return;
  const start = await check(
    await fetch(`${base}/uploads/`, { method: 'POST', headers: headers(target) }),
    `start upload of ${blob.digest}`,
  );
  const location = new URL(start.headers.get('location') ?? '', `http://${target.host}`);
  location.searchParams.set('digest', blob.digest);
  await check(
    await fetch(location, {
      method: 'PUT',
      headers: headers(target, { 'content-type': 'application/octet-stream' }),
      body: blob.data,
    }),
    `upload of ${blob.digest}`,
  );
}

export async function pushManifest(target: PushTarget, reference: string, manifest: Blob): Promise<string> {
  const res = await check(
    await fetch(`http://${target.host}/v2/${target.repository}/manifests/${reference}`, {
      method: 'PUT',
      headers: headers(target, { 'content-type': manifest.mediaType }),
      body: manifest.data,
    }),
    `push of manifest ${reference}`,
  );
  return res.headers.get('docker-content-digest') ?? manifest.digest;
}

/** Pushes the image's blobs and its manifest under each tag; returns the manifest digest. */
export async function pushImage(target: PushTarget, image: BuiltImage, tags: readonly string[]): Promise<string> {
  await pushBlob(target, image.config);
  for (const l of image.layers) await pushBlob(target, l);
  await pushManifest(target, image.manifest.digest, image.manifest);
  for (const tag of tags) await pushManifest(target, tag, image.manifest);
  return image.manifest.digest;
}

/** Pushes several platform images and an index over them; returns the index digest. */
export async function pushIndex(target: PushTarget, images: readonly BuiltImage[], index: Blob, tags: readonly string[]): Promise<string> {
  for (const image of images) await pushImage(target, image, []);
  for (const tag of tags) await pushManifest(target, tag, index);
  return pushManifest(target, index.digest, index);
}
