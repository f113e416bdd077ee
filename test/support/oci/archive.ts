// Image archives as `ctr images export` / `skopeo copy oci-archive:` and `docker save` write them.
import { createHash } from 'node:crypto';
import { compressionOf, decompress } from './compress';
import type { BuiltImage } from './image';
import { ociLayoutFiles, type LayoutImage } from './layout';
import { tar, type TarEntry } from './tar';

/** An OCI image layout as a tar, each image named by the io.containerd.image.name annotation. */
export function ociLayoutArchive(images: readonly LayoutImage[]): Buffer {
  const files = ociLayoutFiles(images);
  const [layoutFile, indexFile, ...blobs] = files;
  return tar([
    { type: 'file', path: layoutFile.path, content: layoutFile.data },
    { type: 'file', path: indexFile.path, content: indexFile.data },
    { type: 'dir', path: 'blobs/' },
    { type: 'dir', path: 'blobs/sha256/' },
    ...blobs.map((b): TarEntry => ({ type: 'file', path: b.path, content: b.data })),
  ]);
}

/**
 * A classic (Docker < 25) `docker save` archive: per layer a `<id>/` dir with `VERSION`, `json` and the
 * uncompressed `layer.tar` (a symlink to the first copy when the same layer appears again),
 * `<config hex>.json`, `manifest.json` and `repositories`. The uncompressed layers are decompressed
 * from the image unless given.
 */
export function dockerSaveArchive(image: BuiltImage, repoTags: readonly string[], uncompressedLayers?: readonly Buffer[]): Buffer {
  const layers = uncompressedLayers ?? image.layers.map((l) => decompress(l.data, compressionOf(l.mediaType)));
  if (layers.length !== image.layers.length) throw new Error(`${layers.length} uncompressed layers for ${image.layers.length} layers`);
  const entries: TarEntry[] = [];
  const ids: string[] = [];
  const firstById = new Map<string, string>();
  layers.forEach((data, i) => {
    const diffId = image.layers[i].diffId;
    const parent = ids[i - 1];
    // Docker's v1 layer ids chain the layers, so a repeated layer gets a new id and a link to its data.
    const id = createHash('sha256').update(`${parent ?? ''} ${diffId}`).digest('hex');
    ids.push(id);
    entries.push({ type: 'dir', path: `${id}/` });
    entries.push({ type: 'file', path: `${id}/VERSION`, content: '1.0' });
    entries.push({ type: 'file', path: `${id}/json`, content: JSON.stringify({ id, ...(parent ? { parent } : {}) }) });
    const first = firstById.get(diffId);
    if (first) entries.push({ type: 'symlink', path: `${id}/layer.tar`, target: `../${first}/layer.tar` });
    else {
      firstById.set(diffId, id);
      entries.push({ type: 'file', path: `${id}/layer.tar`, content: data });
    }
  });
  const configName = `${image.config.digest.slice('sha256:'.length)}.json`;
  entries.push({ type: 'file', path: configName, content: image.config.data });
  entries.push({
    type: 'file',
    path: 'manifest.json',
    content: JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: ids.map((id) => `${id}/layer.tar`) }]),
  });
  const repositories: Record<string, Record<string, string>> = {};
  for (const ref of repoTags) {
    const colon = ref.lastIndexOf(':');
    const tagged = colon > ref.lastIndexOf('/');
    const repo = tagged ? ref.slice(0, colon) : ref;
    const tag = tagged ? ref.slice(colon + 1) : 'latest';
    (repositories[repo] ??= {})[tag] = ids[ids.length - 1] ?? '';
  }
  entries.push({ type: 'file', path: 'repositories', content: JSON.stringify(repositories) });
  return tar(entries);
}
