// Typed parsing of image manifests, indexes and configs. Registries are not trusted: every field berth
// uses is checked, and a bad one is an error naming it.
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError } from '../../errors';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
].join(', ');

const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface Manifest {
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageConfigDoc {
  config?: { User?: string; Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; StopSignal?: string };
  rootfs: { type: string; diff_ids: string[] };
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function bad(what: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image document: ${what}`);
}

function parseJson(body: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw bad(`${what} is not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function descriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw bad(`${where} is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string') throw bad(`${where}.mediaType is missing`);
  if (typeof d.digest !== 'string' || !DIGEST_RE.test(d.digest)) throw bad(`${where}.digest ${JSON.stringify(d.digest)} is not sha256:<64 hex>`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad(`${where}.size is not a non-negative integer`);
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform && typeof d.platform === 'object') {
    const p = d.platform as Record<string, unknown>;
    if (typeof p.os === 'string' && typeof p.architecture === 'string') {
      out.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
    }
  }
  return out;
}

/** The largest manifest or index berth reads (containerd's limit), and the largest image config. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);
const MANIFEST_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
const SCHEMA1_TYPES: ReadonlySet<string> = new Set(['application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws']);
/** What some registries and archives label any document with: the document's own mediaType decides then. */
const GENERIC_TYPES: ReadonlySet<string> = new Set(['', 'application/json', 'application/octet-stream', 'text/plain']);
const CONFIG_TYPES: ReadonlySet<string> = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/**
 * Whether a document is an index (a platform list) or an image manifest, from the media type it came with
 * and its own `mediaType` field: only the OCI image spec's and Docker schema 2's types are accepted (as
 * containerd does). A generic label defers to the document's field, and a document with neither is told
 * apart by its shape. Schema 1 and anything else is refused, fail closed.
 */
export function manifestKind(mediaType: string, body: Buffer): 'index' | 'manifest' {
  const doc = parseJson(body, 'manifest');
  const own = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  for (const t of [mediaType, own]) {
    if (t !== undefined && SCHEMA1_TYPES.has(t)) throw bad(`${t} is a Docker schema 1 manifest, which berth does not support (push the image again with a current client)`);
  }
  if (own !== undefined && !INDEX_TYPES.has(own) && !MANIFEST_TYPES.has(own)) throw bad(`manifest mediaType ${JSON.stringify(own)} is not an OCI or Docker schema 2 image manifest or index`);
  const declared = GENERIC_TYPES.has(mediaType) ? own : mediaType;
  if (declared !== undefined && !INDEX_TYPES.has(declared) && !MANIFEST_TYPES.has(declared)) throw bad(`media type ${JSON.stringify(declared)} is not an OCI or Docker schema 2 image manifest or index`);
  if (declared !== undefined && own !== undefined && INDEX_TYPES.has(declared) !== INDEX_TYPES.has(own)) throw bad(`served as ${declared} but the document says ${own}`);
  if (declared !== undefined) return INDEX_TYPES.has(declared) ? 'index' : 'manifest';
  return Array.isArray(doc.manifests) && !Array.isArray(doc.layers) ? 'index' : 'manifest';
}

/** The manifest an index pointed at must be an image manifest: an index inside an index is not followed. */
export function expectImageManifest(mediaType: string, body: Buffer, digest: string): void {
  if (manifestKind(mediaType, body) !== 'manifest') throw bad(`${digest}, chosen from an index, is itself an index (nested indexes are not followed)`);
}

export function parseManifest(body: Buffer): Manifest {
  const doc = parseJson(body, 'manifest');
  if (doc.schemaVersion !== 2) throw bad(`manifest schemaVersion ${JSON.stringify(doc.schemaVersion)} is not 2 (schema 1 is not supported)`);
  if (!Array.isArray(doc.layers)) throw bad('manifest.layers is not a list');
  const config = descriptor(doc.config, 'manifest.config');
  if (config.size > MAX_CONFIG_BYTES) throw new ResourceExhaustedError(`manifest.config.size ${config.size} is over the ${MAX_CONFIG_BYTES}-byte limit of an image config`);
  if (!CONFIG_TYPES.has(config.mediaType)) throw bad(`manifest.config.mediaType ${JSON.stringify(config.mediaType)} is not an image config (an artifact, not a container image?)`);
  const layers = doc.layers.map((l, i) => descriptor(l, `manifest.layers[${i}]`));
  layers.forEach((l, i) => {
    if (!LAYER_TYPES.has(l.mediaType)) throw bad(`manifest.layers[${i}].mediaType ${l.mediaType} is not a layer type berth can unpack`);
  });
  return { config, layers };
}

export function parseIndex(body: Buffer): Descriptor[] {
  const doc = parseJson(body, 'index');
  if (!Array.isArray(doc.manifests)) throw bad('index.manifests is not a list');
  return doc.manifests.map((m, i) => descriptor(m, `index.manifests[${i}]`));
}

export function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture) throw new InvalidArgumentError(`platform ${JSON.stringify(text)} is not os/architecture[/variant]`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** The variant a platform implies when it names none (containerd's normalisation). */
function defaultVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64') return 'v8';
  if (p.architecture === 'arm') return 'v7';
  return undefined;
}

function matches(want: Platform, have: Platform): boolean {
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  const wantVariant = want.variant ?? defaultVariant(want);
  const haveVariant = have.variant ?? defaultVariant(have);
  return wantVariant === haveVariant;
}

/** The manifest for the platform in an index; NotFoundError when the image has none. */
export function selectPlatform(manifests: readonly Descriptor[], platformText: string, name: string): Descriptor {
  const want = parsePlatform(platformText);
  const found = manifests.find((m) => m.platform && matches(want, m.platform));
  if (!found) throw new NotFoundError(`no manifest for platform ${platformText} in ${name}`);
  return found;
}

export function parseImageConfig(body: Buffer): ImageConfigDoc {
  const doc = parseJson(body, 'image config');
  const rootfs = doc.rootfs as Record<string, unknown> | undefined;
  if (!rootfs || !Array.isArray(rootfs.diff_ids)) throw bad('config.rootfs.diff_ids is missing');
  rootfs.diff_ids.forEach((d, i) => {
    if (typeof d !== 'string' || !DIGEST_RE.test(d)) throw bad(`config.rootfs.diff_ids[${i}] is not sha256:<64 hex>`);
  });
  const config = doc.config;
  if (config !== undefined && config !== null && (typeof config !== 'object' || Array.isArray(config))) {
    throw bad('config.config is not an object');
  }
  const user = (config as Record<string, unknown> | null | undefined)?.User;
  if (user !== undefined && typeof user !== 'string') throw bad('config.config.User is not a string');
  return doc as unknown as ImageConfigDoc;
}
