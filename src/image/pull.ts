// Pulling an image: manifest (through an index if need be), config, and every layer: downloaded,
// stored in the content store and unpacked in one pass; a layer is committed only when its blob digest
// and its diffID both check out. Concurrent pulls of one image, and of one
// layer across images, are joined into one.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';
import { InvalidArgumentError, ResourceExhaustedError, errorCodeOf, messageOf } from '../errors';
import type { PullMetrics } from '../metrics/registry';
import { isNoSpace } from '../storage/disk';
import type { LayerInfo, LayerStore } from '../storage/layer-store';
import { Semaphore, Singleflight } from '../util/mutex';
import type { ContentStore } from './content-store';
import type { ImageLayer, ImageRecord, ImageStore } from './image-store';
import { nameOf } from './image-store';
import { PullProgress } from './pull-progress';
import { formatReference, parseReference, type ImageReference } from './reference';
import type { RegistryClient, Credentials } from './registry/client';
import {
  isIndexMediaType,
  parseImageConfig,
  parseIndex,
  parseManifest,
  selectPlatform,
  type Descriptor,
} from './registry/manifest';
import {
  unpackLayer,
  unpackLayerFromUrl,
  unpackLayerStream,
  type StreamedUnpackResult,
  type UnpackOptions,
  type UnpackResult,
} from './unpack/unpack-layer';

/** Where missing blobs come from during a pull; an import has none (every blob must be in the store). */
interface Download {
  ref: ImageReference;
  credentials: Credentials | undefined;
  signal: AbortSignal;
  progress: PullProgress;
}

/** The names an image is stored under. */
export interface ImageNames {
  repoTags: string[];
  repoDigests: string[];
}

export interface PullerDeps {
  client: RegistryClient;
  content: ContentStore;
  layers: LayerStore;
  images: ImageStore;
  config: BerthConfig['image'];
  log: Logger;
  metrics: PullMetrics;
  /** Frees what nothing uses (the image GC, with every usage source): run after a pull that ran out of space. */
  freeUnused?: () => Promise<void>;
}

/** chainID(L1) = diffID(L1); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)) (OCI image spec). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev ? `sha256:${createHash('sha256').update(`${prev} ${diffId}`).digest('hex')}` : diffId);
  }
  return out;
}

export class Puller {
  private readonly pulls = new Singleflight<ImageRecord>();
  private readonly downloads: Semaphore;
  /** Layers and blobs of pulls in progress: the garbage collector must not free them. */
  private readonly pinnedLayers = new Map<string, number>();
  private readonly pinnedBlobs = new Map<string, number>();

  constructor(private readonly deps: PullerDeps) {
    this.downloads = new Semaphore(deps.config.max_concurrent_downloads);
  }

  get inFlight(): number {
    return this.pulls.size;
  }

  layersInUse(): Iterable<string> {
    return this.pinnedLayers.keys();
  }

  blobsInUse(): Iterable<string> {
    return this.pinnedBlobs.keys();
  }

  /** Pulls an image by reference. The result is the stored record; its ID is the config digest. */
  pull(text: string, credentials: Credentials | undefined, signal?: AbortSignal): Promise<ImageRecord> {
    const ref = parseReference(text);
    const key = formatReference(ref);
    const shared = this.pulls.do(key, () => this.run(ref, key, credentials));
    if (!signal) return shared;
    // A caller that gives up stops waiting; the shared pull goes on for the others (and the next retry).
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('pull cancelled'));
      signal.addEventListener('abort', onAbort, { once: true });
      shared.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async run(ref: ImageReference, name: string, credentials: Credentials | undefined): Promise<ImageRecord> {
    const { log, metrics, config } = this.deps;
    const abort = new AbortController();
    const progress = new PullProgress({
      image: name,
      log,
      metrics,
      abort,
      logIntervalMs: config.progress_log_interval_seconds * 1000,
      stallTimeoutMs: config.pull_progress_timeout_seconds * 1000,
    });
    const started = process.hrtime.bigint();
    metrics.inFlight.inc();
    log.info({ image: name }, 'pull started');
    let outcome = 'error';
    try {
      const record = await this.fetchImage(ref, name, credentials, abort.signal, progress);
      outcome = 'ok';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      log.info({ image: name, id: record.id, bytes: progress.totalBytes(), seconds }, 'pull done');
      return record;
    } catch (err) {
      // A stalled pull is aborted with a clear reason; report that rather than the I/O error it caused.
      let reason = abort.signal.aborted ? (abort.signal.reason as Error) : err;
      // The content and layer stores report a full disk themselves; a record or layer.json write may not.
      if (isNoSpace(reason)) reason = new ResourceExhaustedError(`no space left on device while storing image ${name}: ${messageOf(reason)}`, { cause: reason });
      log.warn({ image: name, error: messageOf(reason) }, 'pull failed');
      // Out of room (a full disk, or over a layer limit): what this pull stored (its manifests and config,
      // layers it completed) is freed now, not at the next removal. Other failures keep complete blobs
      // and layers for a retry. The pull's own pins are released by now; other pulls keep theirs.
      if (errorCodeOf(reason) === 'RESOURCE_EXHAUSTED' && this.deps.freeUnused) {
        await this.deps.freeUnused().catch((e: unknown) => log.error({ image: name, error: messageOf(e) }, 'freeing what a failed pull stored failed'));
      }
      throw reason;
    } finally {
      progress.stop();
      abort.abort(new Error('pull finished'));
      metrics.inFlight.dec();
      metrics.duration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private async fetchImage(
    ref: ImageReference,
    name: string,
    credentials: Credentials | undefined,
    signal: AbortSignal,
    progress: PullProgress,
  ): Promise<ImageRecord> {
    const { client, content } = this.deps;
    const manifestDigests: string[] = [];
    // Pinned from their write until the record names them: the garbage collector must not free them.
    const storeManifest = async (body: Buffer) => {
      const digest = await content.writeBlob(body);
      this.pin([digest], []);
      manifestDigests.push(digest);
    };
    try {
      let top = await client.getManifest(ref, { credentials, signal });
      const repoDigest = `${nameOf(ref)}@${top.digest}`;
      await storeManifest(top.body);
      if (isIndexMediaType(top.mediaType, top.body)) {
        const chosen = selectPlatform(parseIndex(top.body), this.deps.config.platform, name);
        top = await client.getManifestByDigest(ref, chosen.digest, { credentials, signal });
        await storeManifest(top.body);
      }
      const names = { repoTags: ref.tag ? [formatReference({ ...ref, digest: undefined })] : [], repoDigests: [repoDigest] };
      return await this.storeImage(top.body, manifestDigests, names, { ref, credentials, signal, progress });
    } finally {
      this.unpin(manifestDigests, []);
    }
  }

  /**
   * Stores the image a manifest describes: its config and layers (downloaded when a download is given,
   * else they must be in the content store already, as after an import), then its record.
   */
  async storeImage(manifestBody: Buffer, manifestDigests: string[], names: ImageNames, download?: Download): Promise<ImageRecord> {
    const { content } = this.deps;
    const manifest = parseManifest(manifestBody);
    const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
    const chain: string[] = [];
    this.pin(blobs, chain);
    try {
      await this.ensureBlob(manifest.config, download);
      const imageConfig = parseImageConfig(await content.read(manifest.config.digest));
      const diffIds = imageConfig.rootfs.diff_ids;
      if (diffIds.length !== manifest.layers.length) {
        throw new InvalidArgumentError(
          `manifest has ${manifest.layers.length} layers but the image config lists ${diffIds.length} diff_ids`,
        );
      }
      chain.push(...chainIds(diffIds));
      this.pin([], chain);
      const layers: ImageLayer[] = manifest.layers.map((l, i) => ({
        digest: l.digest,
        mediaType: l.mediaType,
        size: l.size,
        diffId: diffIds[i],
        chainId: chain[i],
      }));
      await Promise.all(layers.map((layer) => this.ensureLayer(layer, download)));
      return await this.deps.images.put({
        id: manifest.config.digest,
        ...names,
        manifestDigests,
        config: { digest: manifest.config.digest, size: manifest.config.size },
        layers,
        size: manifest.config.size + layers.reduce((sum, l) => sum + l.size, 0),
        user: imageConfig.config?.User ?? '',
        storedAt: new Date().toISOString(),
      });
    } finally {
      this.unpin(blobs, chain);
    }
  }

  private pin(blobs: readonly string[], layers: readonly string[]): void {
    for (const d of blobs) this.pinnedBlobs.set(d, (this.pinnedBlobs.get(d) ?? 0) + 1);
    for (const c of layers) this.pinnedLayers.set(c, (this.pinnedLayers.get(c) ?? 0) + 1);
  }

  private unpin(blobs: readonly string[], layers: readonly string[]): void {
    const drop = (map: Map<string, number>, key: string) => {
      const n = (map.get(key) ?? 1) - 1;
      if (n <= 0) map.delete(key);
      else map.set(key, n);
    };
    for (const d of blobs) drop(this.pinnedBlobs, d);
    for (const c of layers) drop(this.pinnedLayers, c);
  }

  /** Small blobs (the config): downloaded into the content store if missing. */
  private async ensureBlob(desc: Descriptor, download: Download | undefined): Promise<void> {
    const { client, content } = this.deps;
    if (await content.has(desc.digest)) return;
    if (!download) throw new InvalidArgumentError(`blob ${desc.digest} is missing`);
    const { ref, credentials, signal, progress } = download;
    const blob = await client.openBlob(ref, desc.digest, { credentials, signal });
    progress.start(desc.digest, desc.size);
    await content.ingest(desc.digest, desc.size, blob.stream, {
      signal,
      onProgress: (bytes) => progress.add(desc.digest, bytes),
    });
    progress.finish(desc.digest);
  }

  /**
   * A layer: unpacked once. A blob that is not in the content store yet is downloaded, stored and
   * unpacked in one pass by berth-unpack, which writes the blob for the content store while it unpacks
   * (at most image.max_concurrent_downloads at a time), fetching the blob itself; when the first
   * endpoint does not serve it (a final answer other than 200), berthd downloads it with its own client
   * (mirror fallback, auth challenges) and pipes it in. A blob that is stored already (or being stored
   * by another pull) is unpacked from the store.
   */
  private async ensureLayer(layer: ImageLayer, download: Download | undefined): Promise<LayerInfo> {
    const { layers, content, config } = this.deps;
    return layers.ensure(layer.chainId, async (diffDir) => {
      const opts: UnpackOptions = {
        limits: { maxBytes: config.max_layer_bytes, maxEntries: config.max_layer_entries },
        signal: download?.signal,
        onProgress: () => download?.progress.touch(),
      };
      let result: UnpackResult | undefined;
      if (!(await content.has(layer.digest))) {
        if (!download) throw new InvalidArgumentError(`layer blob ${layer.digest} is missing`);
        result = await this.downloads.run(async () => {
          let streamed: UnpackResult | undefined;
          await content.ingestWith(layer.digest, layer.size, async (temp) => {
            const r = await this.downloadAndUnpack(layer, download, temp, diffDir, opts);
            streamed = r;
            return { digest: r.blobDigest, size: r.blobSize };
          });
          return streamed; // undefined: another pull stored the blob meanwhile
        });
      }
      result ??= await unpackLayer(content.path(layer.digest), layer.mediaType, diffDir, opts);
      if (result.diffId !== layer.diffId) {
        throw new InvalidArgumentError(
          `layer ${layer.digest}: its content has diffID ${result.diffId}, the image config says ${layer.diffId}`,
        );
      }
      return { diffId: result.diffId, size: result.uncompressedSize, entries: result.entries };
    });
  }

  private async downloadAndUnpack(
    layer: ImageLayer,
    download: Download,
    blobFile: string,
    diffDir: string,
    opts: UnpackOptions,
  ): Promise<StreamedUnpackResult> {
    const { ref, credentials, signal, progress } = download;
    progress.start(layer.digest, layer.size);
    const copy = { size: layer.size, copyTo: blobFile, onBytes: (n: number) => progress.add(layer.digest, n) };
    // berth-unpack fetches the blob itself: its bytes never cross berthd's event loop.
    const direct = this.deps.client.directBlobRequest(ref, layer.digest, { credentials });
    let result = await unpackLayerFromUrl(direct, copy, layer.mediaType, diffDir, opts);
    if (!result) {
      this.deps.log.debug({ layer: layer.digest, url: direct.url }, 'direct blob download not served; downloading through berthd');
      const blob = await this.deps.client.openBlob(ref, layer.digest, { credentials, signal });
      result = await unpackLayerStream(blob.stream, copy, layer.mediaType, diffDir, opts);
    }
    progress.finish(layer.digest);
    return result;
  }
}
