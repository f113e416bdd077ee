// The OCI image layout (oci-layout, index.json, blobs/sha256/<hex>) of built images, as a list of
// files, as a directory on disk, or (archive.ts) as a tar.
import fs from 'node:fs';
import path from 'node:path';
import { descriptor, type Blob, type BuiltImage } from './image';

/** One image in a layout, or a multi-platform index with its images; `name` is e.g. `registry.k8s.io/pause:3.9`. */
export type LayoutImage = { name?: string; image: BuiltImage } | { name?: string; index: Blob; images: readonly BuiltImage[] };

export interface LayoutFile {
  path: string;
  data: Buffer;
}

/** The index.json descriptor annotations of a named image, as containerd and skopeo write them. */
function nameAnnotations(name: string | undefined): Record<string, string> | undefined {
  if (!name) return undefined;
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  const tag = colon > lastSlash ? name.slice(colon + 1) : 'latest';
  return { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': tag };
}

/** The files of the layout: `oci-layout`, `index.json`, then every blob once, sorted by digest. */
export function ociLayoutFiles(images: readonly LayoutImage[]): LayoutFile[] {
  const blobs = new Map<string, Blob>();
  const add = (image: BuiltImage) => {
    for (const b of [image.config, image.manifest, ...image.layers]) blobs.set(b.digest, b);
  };
  const manifests = images.map((entry) => {
    const top = 'index' in entry ? entry.index : entry.image.manifest;
    if ('index' in entry) {
      entry.images.forEach(add);
      blobs.set(entry.index.digest, entry.index);
    } else {
      add(entry.image);
    }
    const annotations = nameAnnotations(entry.name);
    return { ...descriptor(top), ...(annotations ? { annotations } : {}) };
  });
  return [
    { path: 'oci-layout', data: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    { path: 'index.json', data: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })) },
    ...[...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : 1)).map((b) => ({ path: `blobs/sha256/${b.digest.slice('sha256:'.length)}`, data: b.data })),
  ];
}

/** Writes the layout into `dir` (created if missing). */
export function writeOciLayout(dir: string, images: readonly LayoutImage[]): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const f of ociLayoutFiles(images)) fs.writeFileSync(path.join(dir, f.path), f.data);
}
