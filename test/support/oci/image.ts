// OCI and Docker image documents built in memory: layers, config, manifest, index. Deterministic:
// the same definition always gives the same digests.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { tar, type TarEntry } from './tar';

export type Compression = 'gzip' | 'zstd' | 'none';

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

export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export interface Layer extends Blob {
  diffId: string;
}

export function compress(data: Buffer, compression: Compression): Buffer {
  if (compression === 'gzip') return zlib.gzipSync(data, { level: 6 });
  if (compression === 'zstd') return execFileSync('zstd', ['-q', '-c', '-3'], { input: data, maxBuffer: 1 << 30 });
  return data;
}

export function layerFromTar(tarball: Buffer, compression: Compression = 'gzip', style: 'oci' | 'docker' = 'oci'): Layer {
  const data = compress(tarball, compression);
  const mediaType = style === 'docker' && compression === 'gzip' ? MEDIA.dockerLayer : MEDIA.ociLayer[compression];
  return { mediaType, digest: sha256(data), size: data.length, data, diffId: sha256(tarball) };
}

export function layer(entries: readonly TarEntry[], compression: Compression = 'gzip', style: 'oci' | 'docker' = 'oci'): Layer {
  return layerFromTar(tar(entries), compression, style);
}

export interface ImageConfig {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  User?: string;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface BuiltImage {
  config: Blob;
  layers: Layer[];
  manifest: Blob;
  platform: Platform;
}

function jsonBlob(mediaType: string, value: unknown): Blob {
  const data = Buffer.from(JSON.stringify(value));
  return { mediaType, digest: sha256(data), size: data.length, data };
}

const descriptor = (b: Blob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

export function buildImage(
  layers: Layer[],
  config: ImageConfig = {},
  opts: { style?: 'oci' | 'docker'; platform?: Platform } = {},
): BuiltImage {
  const style = opts.style ?? 'oci';
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const configBlob = jsonBlob(style === 'oci' ? MEDIA.ociConfig : MEDIA.dockerConfig, {
    created: '2023-11-14T22:13:20Z',
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '2023-11-14T22:13:20Z', created_by: 'berth test image builder' })),
  });
  const manifest = jsonBlob(style === 'oci' ? MEDIA.ociManifest : MEDIA.dockerManifest, {
    schemaVersion: 2,
    mediaType: style === 'oci' ? MEDIA.ociManifest : MEDIA.dockerManifest,
    config: descriptor(configBlob),
    layers: layers.map(descriptor),
  });
  return { config: configBlob, layers, manifest, platform };
}

export function buildIndex(images: readonly BuiltImage[], style: 'oci' | 'docker' = 'oci'): Blob {
  const mediaType = style === 'oci' ? MEDIA.ociIndex : MEDIA.dockerList;
  return jsonBlob(mediaType, {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((i) => ({ ...descriptor(i.manifest), platform: i.platform })),
  });
}
