// Fetching an image's signatures: simple-signing blobs from the lookaside
// (<base>/<repository>@sha256=<hex>/signature-<n>, n from 1 until the first missing one), and cosign
// signatures attached in the registry (the tag sha256-<hex>.sig: an OCI manifest whose simple-signing
// layers are the payloads, each with its signature in an annotation).
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { NotFoundError, ResourceExhaustedError } from '../../errors';
import type { ImageReference } from '../reference';
import type { FetchOptions, RegistryClient } from '../registry/client';
import { readBody, request } from '../registry/http';
import type { CosignSignature } from './sigstore';

/** At most this many signatures per image, and this large each (containers/image: 128). */
const MAX_SIGNATURES = 128;
const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;
const TIMEOUT_MS = 30_000;

export const COSIGN_LAYER = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIGNATURE = 'dev.cosignproject.cosign/signature';
const COSIGN_CERTIFICATE = 'dev.sigstore.cosign/certificate';
const COSIGN_CHAIN = 'dev.sigstore.cosign/chain';
const COSIGN_BUNDLE = 'dev.sigstore.cosign/bundle';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Signatures could not be read (an unreachable lookaside, a registry's error): the image is refused. */
export class SignatureFetchError extends Error {}

/** One lookaside signature: its bytes, or undefined when there is no such signature. */
async function readLookaside(url: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  if (url.startsWith('file:')) {
    try {
      const file = fileURLToPath(url);
      const st = await fs.stat(file);
      if (st.size > MAX_SIGNATURE_BYTES) throw new SignatureFetchError(`${url} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
      return await fs.readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (err instanceof SignatureFetchError) throw err;
      throw new SignatureFetchError(`reading signature from ${url}: ${(err as Error).message}`);
    }
  }
  try {
    const res = await request(url, { signal, timeoutMs: TIMEOUT_MS });
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new SignatureFetchError(`reading signature from ${url}: HTTP ${res.statusCode}`);
    }
    return await readBody(res, MAX_SIGNATURE_BYTES);
  } catch (err) {
    if (err instanceof SignatureFetchError) throw err;
    throw new SignatureFetchError(`reading signature from ${url}: ${(err as Error).message}`);
  }
}

export async function lookasideSignatures(base: string, ref: ImageReference, digest: string, signal?: AbortSignal): Promise<Buffer[]> {
  const [algorithm, hex] = digest.split(':');
  const dir = `${base.replace(/\/+$/, '')}/${ref.repository}@${algorithm}=${hex}`;
  const out: Buffer[] = [];
  for (let n = 1; ; n++) {
    if (n > MAX_SIGNATURES) throw new SignatureFetchError(`${dir} holds more than ${MAX_SIGNATURES} signatures`);
    const sig = await readLookaside(`${dir}/signature-${n}`, signal);
    if (!sig) return out;
    out.push(sig);
  }
}


interface SignatureManifest {
  layers?: Array<{ mediaType?: string; digest?: string; size?: number; annotations?: Record<string, string> }>;
}

async function readBlob(client: RegistryClient, ref: ImageReference, digest: string, opts: FetchOptions): Promise<Buffer> {
  const blob = await client.openBlob(ref, digest, opts);
  const body = await readBody(blob.stream, MAX_SIGNATURE_BYTES).catch((err: Error) => {
    if (err instanceof ResourceExhaustedError) throw new SignatureFetchError(`signature payload ${digest} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
    throw err;
  });
  if (`sha256:${createHash('sha256').update(body).digest('hex')}` !== digest) throw new SignatureFetchError(`signature payload ${digest} does not match its digest`);
  return body;
}

/** The cosign signatures attached to the image with this manifest digest (none: an empty list). */
export async function cosignSignatures(client: RegistryClient, ref: ImageReference, digest: string, opts: FetchOptions): Promise<CosignSignature[]> {
  const tag = `${digest.replace(':', '-')}.sig`;
  const sigRef: ImageReference = { registry: ref.registry, repository: ref.repository, tag };
  let manifest;
  try {
    manifest = await client.getManifest(sigRef, opts);
  } catch (err) {
    if (err instanceof NotFoundError) return [];
    throw new SignatureFetchError(`reading the sigstore signatures ${tag}: ${(err as Error).message}`);
  }
  if (manifest.mediaType !== OCI_MANIFEST) throw new SignatureFetchError(`the sigstore signatures ${tag} are a ${manifest.mediaType || 'untyped'} manifest, not an OCI image manifest`);
  const doc = JSON.parse(manifest.body.toString('utf8')) as SignatureManifest;
  const layers = (doc.layers ?? []).filter((l) => l.mediaType === COSIGN_LAYER);
  if (layers.length > MAX_SIGNATURES) throw new SignatureFetchError(`${tag} holds more than ${MAX_SIGNATURES} signatures`);
  const out: CosignSignature[] = [];
  for (const layer of layers) {
    const annotation = layer.annotations?.[COSIGN_SIGNATURE];
    if (!annotation) throw new SignatureFetchError(`a signature layer of ${tag} has no ${COSIGN_SIGNATURE} annotation`);
    if (typeof layer.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(layer.digest)) throw new SignatureFetchError(`a signature layer of ${tag} has no sha256 digest`);
    const vouch = layer.annotations ?? {};
    out.push({
      payload: await readBlob(client, sigRef, layer.digest, opts),
      signature: Buffer.from(annotation, 'base64'),
      ...(vouch[COSIGN_CERTIFICATE] ? { certificate: vouch[COSIGN_CERTIFICATE] } : {}),
      ...(vouch[COSIGN_CHAIN] ? { chain: vouch[COSIGN_CHAIN] } : {}),
      ...(vouch[COSIGN_BUNDLE] ? { bundle: vouch[COSIGN_BUNDLE] } : {}),
    });
  }
  return out;
}
