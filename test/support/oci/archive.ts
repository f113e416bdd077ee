// Image archives as `ctr images export`/`skopeo copy oci-archive:` and `docker save` write them.
import type { BuiltImage } from './image';
import { tar, type TarEntry } from './tar';

const blobEntry = (b: { digest: string; data: Buffer }): TarEntry => ({
  type: 'file',
  path: `blobs/sha256/${b.digest.slice(7)}`,
  content: b.data,
});

/** An OCI image layout as a tar, each image named by the io.containerd.image.name annotation. */
export function ociLayoutArchive(images: ReadonlyArray<{ name?: string; image: BuiltImage }>): Buffer {
  const blobs = new Map<string, TarEntry>();
  for (const { image } of images) {
    for (const b of [image.config, image.manifest, ...image.layers]) blobs.set(b.digest, blobEntry(b));
  }
  const index = {
    schemaVersion: 2,
    manifests: images.map(({ name, image }) => ({
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.size,
      ...(name ? { annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':').pop() } } : {}),
    })),
  };
  return tar([
    { type: 'file', path: 'oci-layout', content: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { type: 'file', path: 'index.json', content: JSON.stringify(index) },
    { type: 'dir', path: 'blobs/' },
    { type: 'dir', path: 'blobs/sha256/' },
    ...blobs.values(),
  ]);
}

/** A classic `docker save` archive: uncompressed layer.tar files, one linked to another when shared. */
export function dockerSaveArchive(image: BuiltImage, repoTags: string[], uncompressedLayers: Buffer[]): Buffer {
  const entries: TarEntry[] = [];
  const layerPaths = uncompressedLayers.map((_l, i) => `layer${i}/layer.tar`);
  uncompressedLayers.forEach((data, i) => {
    entries.push({ type: 'dir', path: `layer${i}/` });
    if (i > 0 && data.equals(uncompressedLayers[0])) entries.push({ type: 'symlink', path: layerPaths[i], target: '../layer0/layer.tar' });
    else entries.push({ type: 'file', path: layerPaths[i], content: data });
  });
  const configName = `${image.config.digest.slice(7)}.json`;
  entries.push({ type: 'file', path: configName, content: image.config.data });
  entries.push({ type: 'file', path: 'manifest.json', content: JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: layerPaths }]) });
  return tar(entries);
}
