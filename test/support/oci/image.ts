// OCI and Docker image documents built in memory: layers, config, manifest, index. Deterministic:
// the same definition always gives the same digests (fixed `created`, JSON in a fixed key order).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { compress, type Compression } from './compress';
import { EPOCH, tar, type TarEntry } from './tar';

export { compress, decompress, type Compression } from './compress';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: { gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd', none: 'application/vnd.oci.image.layer.v1.tar' },
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export type Style = 'oci' | 'docker';

export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** The time written into configs and history: EPOCH, 2023-11-14T22:13:20Z. */
export const CREATED = new Date(EPOCH * 1000).toISOString().replace('.000Z', 'Z');

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export interface Layer extends Blob {
  /** sha256 of the uncompressed tar: what the config's rootfs.diff_ids lists. */
  diffId: string;
}

/**
 * A layer from an uncompressed tar. Docker style gives gzip layers Docker's media type; Docker has
 * none of its own for zstd or uncompressed layers, so those keep the OCI types.
 */
export function layerFromTar(tarball: Buffer, compression: Compression = 'gzip', style: Style = 'oci'): Layer {
  const data = compress(tarball, compression);
  const mediaType = style === 'docker' && compression === 'gzip' ? MEDIA.dockerLayer : MEDIA.ociLayer[compression];
  return { mediaType, digest: sha256(data), size: data.length, data, diffId: sha256(tarball) };
}

/** A layer from a tar file on disk (e.g. one written by writeTar). */
export function layerFromFile(tarFile: string, compression: Compression = 'gzip', style: Style = 'oci'): Layer {
  return layerFromTar(fs.readFileSync(tarFile), compression, style);
}

/** A layer from tar entries, written exactly as given (see tar.ts). */
export function layer(entries: readonly TarEntry[], compression: Compression = 'gzip', style: Style = 'oci'): Layer {
  return layerFromTar(tar(entries), compression, style);
}

/** The image config's `config` object (the runtime defaults of a container). */
export interface ImageConfig {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  User?: string;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Volumes?: Record<string, Record<string, never>>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface BuiltImage {
  config: Blob;
  layers: Layer[];
  manifest: Blob;
  platform: Platform;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface BuildOptions {
  style?: Style;
  /** Default linux/amd64. */
  platform?: Platform;
  /** Default CREATED. */
  created?: string;
  /** Default one entry per layer. */
  history?: HistoryEntry[];
  /** Manifest annotations (OCI only). */
  annotations?: Record<string, string>;
}

export function jsonBlob(mediaType: string, value: unknown): Blob {
  const data = Buffer.from(JSON.stringify(value));
  return { mediaType, digest: sha256(data), size: data.length, data };
}

export const descriptor = (b: Blob): { mediaType: string; digest: string; size: number } => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

export function buildImage(layers: Layer[], config: ImageConfig = {}, opts: BuildOptions = {}): BuiltImage {
  const style = opts.style ?? 'oci';
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const created = opts.created ?? CREATED;
  const configBlob = jsonBlob(style === 'oci' ? MEDIA.ociConfig : MEDIA.dockerConfig, {
    created,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    ...(platform['os.version'] ? { 'os.version': platform['os.version'] } : {}),
    ...(platform['os.features'] ? { 'os.features': platform['os.features'] } : {}),
    config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: opts.history ?? layers.map(() => ({ created, created_by: 'berth test image builder' })),
  });
  const manifest = jsonBlob(style === 'oci' ? MEDIA.ociManifest : MEDIA.dockerManifest, {
    schemaVersion: 2,
    mediaType: style === 'oci' ? MEDIA.ociManifest : MEDIA.dockerManifest,
    config: descriptor(configBlob),
    layers: layers.map(descriptor),
    ...(opts.annotations && style === 'oci' ? { annotations: opts.annotations } : {}),
  });
  return { config: configBlob, layers, manifest, platform };
}

/** An OCI image index or a Docker manifest list over platform images. */
export function buildIndex(images: readonly BuiltImage[], style: Style = 'oci', annotations?: Record<string, string>): Blob {
  const mediaType = style === 'oci' ? MEDIA.ociIndex : MEDIA.dockerList;
  return jsonBlob(mediaType, {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((i) => ({ ...descriptor(i.manifest), platform: i.platform })),
    ...(annotations && style === 'oci' ? { annotations } : {}),
  });
}
