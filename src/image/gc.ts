// Frees blobs and layers that nothing uses any more. "Used" is derived from the records that exist —
// images, and (through UsageSource) containers — never from a stored counter that could drift.
import type { Logger } from 'pino';
import type { LayerStore } from '../storage/layer-store';
import type { ContentStore } from './content-store';
import type { ImageRecord } from './image-store';

/** Anything besides images that keeps layers or blobs alive (containers register one). */
export interface UsageSource {
  /** Chain IDs of layers in use (e.g. by a container's root filesystem, or a pull in progress). */
  layersInUse(): Iterable<string>;
  /** Blob digests in use (e.g. by a pull in progress). */
  blobsInUse?(): Iterable<string>;
}

export function blobsOf(image: ImageRecord): string[] {
  return [...image.manifestDigests, image.config.digest, ...image.layers.map((l) => l.digest)];
}

export interface GcResult {
  blobs: string[];
  layers: string[];
}

export async function collectGarbage(
  images: readonly ImageRecord[],
  sources: readonly UsageSource[],
  content: ContentStore,
  layers: LayerStore,
  log: Logger,
): Promise<GcResult> {
  const keepBlobs = new Set(images.flatMap(blobsOf));
  const keepLayers = new Set(images.flatMap((i) => i.layers.map((l) => l.chainId)));
  for (const source of sources) {
    for (const chainId of source.layersInUse()) keepLayers.add(chainId);
    for (const digest of source.blobsInUse?.() ?? []) keepBlobs.add(digest);
  }

  const freed: GcResult = { blobs: [], layers: [] };
  for (const chainId of await layers.list()) {
    if (keepLayers.has(chainId)) continue;
    await layers.remove(chainId);
    freed.layers.push(chainId);
  }
  for (const digest of await content.list()) {
    if (keepBlobs.has(digest)) continue;
    await content.delete(digest);
    freed.blobs.push(digest);
  }
  if (freed.blobs.length || freed.layers.length) {
    log.info({ blobs: freed.blobs.length, layers: freed.layers.length }, 'freed unused image content');
  }
  return freed;
}
