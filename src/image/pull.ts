// Pulling an image: manifest (through an index if need be), config, and every layer: downloaded,
// stored in the content store and unpacked in one pass; a layer is committed only when its blob digest
// and its diffID both check out. Concurrent pulls of one image, and of one
// layer across images, are joined into one.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';
import { InvalidArgumentError, ResourceExhaustedError, errorCodeOf, messageOf } from '../errors';
import type { PullMetrics } from '../metrics/registry';
import { isNoSpace } from '../storage/disk';
import type { LayerInfo, LayerStore, StagedLayer } from '../storage/layer-store';
import { Singleflight } from '../util/mutex';
import type { ContentStore } from './content-store';
import type { ImageLayer, ImageRecord, ImageStore } from './image-store';
import { nameOf } from './image-store';
import { PullProgress } from './pull-progress';
import { formatReference, parseReference, type ImageReference } from './reference';
import type { RegistryClient, Credentials } from './registry/client';
import {
  expectImageManifest,
  manifestKind,
  parseImageConfig,
  parseIndex,
  parseManifest,
  selectPlatform,
  type Descriptor,
} from './registry/manifest';
import {
  unpackLayer,
  unpackLayerStream,
  type StreamedUnpackResult,
  type UnpackOptions,
  type UnpackResult,
} from './unpack/unpack-layer';
import type { Admission, TrustVerifier } from './trust/verifier';
import { UnpackWorkers } from './unpack/unpack-workers';

/** Where missing blobs come from during a pull; an import has none (every blob must be in the store). */
interface Download {
  ref: ImageReference;
  credentials: Credentials | undefined;
  signal: AbortSignal;
  progress: PullProgress;
}

/**
 * How many layers download at once, across pulls: image.max_concurrent_downloads layers of 4 MiB and
 * more, twice as many smaller ones. A large layer keeps a core busy (inflate, two sha256 passes): more
 * of them than cores gains nothing. A small one mostly waits (the registry's answer, a sync, berthd's
 * commit), and more of those at once fill the waits; more than twice as many cost more in workers
 * started than they gain (measured on 2 cores: Session 5 in docs/benchmarks.md).
 */
export const SLOT_UNITS = 2;
/**
 * How long a berth-unpack worker waits for its next layer: the pulls of a pod's images, one after the
 * other, share workers and their registry connections; 5 s, as Node's HTTP client keeps an idle
 * connection.
 */
const WORKER_IDLE_MS = 5_000;

/** The failures after which what a pull stored is freed at once (see Puller.run). */
const FREED_AFTER: ReadonlySet<string> = new Set(['RESOURCE_EXHAUSTED', 'INVALID_ARGUMENT']);
export function layerWeight(size: number): number {
  return size >= 4 * 1024 * 1024 ? SLOT_UNITS : 1;
}

/** A semaphore whose tasks take a weight each out of a capacity (first come, first served). */
export class WeightedSlots {
  private used = 0;
  private readonly waiting: Array<{ weight: number; go: () => void }> = [];

  constructor(readonly capacity: number) {}

  async run<T>(weight: number, fn: () => Promise<T>): Promise<T> {
    const w = Math.min(weight, this.capacity);
    // A waiter is granted its weight by the task that makes room (so nothing overtakes it meanwhile).
    if (this.waiting.length > 0 || this.used + w > this.capacity) await new Promise<void>((go) => this.waiting.push({ weight: w, go }));
    else this.used += w;
    try {
      return await fn();
    } finally {
      this.used -= w;
      while (this.waiting.length > 0 && this.used + this.waiting[0].weight <= this.capacity) {
        const next = this.waiting.shift()!;
        this.used += next.weight;
        next.go();
      }
    }
  }
}

/** A layer started before the config came: its staged dir and what storing it gave. */
interface Prefetch {
  /** Set once the staged dir is made. */
  staged?: StagedLayer;
  result: Promise<UnpackResult | undefined>;
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
  /** The trust policy's judge: every pulled manifest passes it before anything of the image is stored. */
  trust: TrustVerifier;
}

/** Who asked for a pull: the pod of PullImage's sandbox_config. Its namespace picks the trust policy. */
export interface PullRequester {
  namespace: string;
  name: string;
}

/** Milliseconds rounded to 0.1, for the debug timings. */
const ms = (x: number): number => Math.round(x * 10) / 10;

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
  private readonly downloads: WeightedSlots;
  /** Layers and blobs of pulls in progress: the garbage collector must not free them. */
  private readonly pinnedLayers = new Map<string, number>();
  private readonly pinnedBlobs = new Map<string, number>();

  /** berth-unpack workers, shared by every pull; each ends after WORKER_IDLE_MS without a layer. */
  private readonly workers: UnpackWorkers;

  constructor(private readonly deps: PullerDeps) {
    this.downloads = new WeightedSlots(deps.config.max_concurrent_downloads * SLOT_UNITS);
    this.workers = new UnpackWorkers(this.unpackLimits(), WORKER_IDLE_MS);
  }

  /** Ends the workers (berthd's stop): a pull still running fails. */
  close(): void {
    this.workers.close();
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

  /**
   * Pulls an image by reference. The result is the stored record; its ID is the config digest. Pulls of
   * one image under one trust policy are one pull; under different policies (pods of namespaces with
   * policies of their own), each is judged by its own.
   */
  async pull(text: string, credentials: Credentials | undefined, signal?: AbortSignal, pod?: PullRequester): Promise<ImageRecord> {
    const ref = parseReference(text);
    const name = formatReference(ref);
    const policy = await this.deps.trust.policyFileFor(pod?.namespace);
    const key = `${name}\0${policy}`;
    if (pod) this.deps.log.info({ image: name, pod: `${pod.namespace}/${pod.name}`, policy: policy || undefined, joined: this.pulls.running(key) !== undefined }, 'pull requested for a pod');
    const shared = this.pulls.do(key, () => this.run(ref, name, policy, credentials));
    if (!signal) return shared;
    // A caller that gives up stops waiting; the shared pull goes on for the others (and the next retry).
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('pull cancelled'));
      signal.addEventListener('abort', onAbort, { once: true });
      shared.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async run(ref: ImageReference, name: string, policy: string, credentials: Credentials | undefined): Promise<ImageRecord> {
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
      const record = await this.fetchImage(ref, name, policy, credentials, abort.signal, progress);
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
      // Out of room (a full disk, over a limit) or refused content (a manifest, config or layer that breaks
      // a rule): what this pull stored (its manifests and config, layers it completed) is freed now, not
      // at the next removal: a retry would fetch the same. Other failures (the network, a registry's
      // error) keep complete blobs and layers for a retry. The pull's own pins are released by now; other
      // pulls keep theirs.
      if (FREED_AFTER.has(errorCodeOf(reason)) && this.deps.freeUnused) {
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
    policy: string,
    credentials: Credentials | undefined,
    signal: AbortSignal,
    progress: PullProgress,
  ): Promise<ImageRecord> {
    const { client, content } = this.deps;
    const manifestDigests: string[] = [];
    try {
      const t0 = performance.now();
      const top = await client.getManifest(ref, { credentials, signal });
      this.deps.log.debug({ image: name, manifestMs: ms(performance.now() - t0) }, 'pull: manifest fetched');
      const repoDigest = `${nameOf(ref)}@${top.digest}`;
      let image = top;
      if (manifestKind(top.mediaType, top.body) === 'index') {
        const chosen = selectPlatform(parseIndex(top.body), this.deps.config.platform, name);
        image = await client.getManifestByDigest(ref, chosen.digest, { credentials, signal });
        expectImageManifest(image.mediaType, image.body, chosen.digest);
      }
      // The manifest that runs is judged before anything of the image is written, as containers/image
      // judges it (a platform's manifest of an index): its bytes are the ones stored below.
      const trust = await this.deps.trust.verify(ref, image.digest, policy, { credentials, signal });
      // Pinned from their write until the record names them: the garbage collector must not free them.
      for (const m of image === top ? [top] : [top, image]) {
        const digest = await content.writeBlob(m.body);
        this.pin([digest], []);
        manifestDigests.push(digest);
      }
      const names = { repoTags: ref.tag ? [formatReference({ ...ref, digest: undefined })] : [], repoDigests: [repoDigest] };
      return await this.storeImage(image.body, manifestDigests, names, { ref, credentials, signal, progress }, trust);
    } finally {
      this.unpin(manifestDigests, []);
    }
  }

  /**
   * Stores the image a manifest describes: its config and layers (downloaded when a download is given,
   * else they must be in the content store already, as after an import), then its record.
   */
  async storeImage(manifestBody: Buffer, manifestDigests: string[], names: ImageNames, download?: Download, trust?: Admission): Promise<ImageRecord> {
    const { content } = this.deps;
    const manifest = parseManifest(manifestBody);
    const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
    const chain: string[] = [];
    this.pin(blobs, chain);
    // The pull's berth-unpack workers start, and its missing layers download and unpack into staged
    // dirs, while the config is fetched: only the commit of a layer needs the config (its diffID and
    // chain ID).
    let prefetches: (Prefetch | undefined)[] = [];
    try {
      const t0 = performance.now();
      const config = this.ensureBlob(manifest.config, download);
      config.catch(() => undefined); // awaited below, after the prefetches have started
      if (download) prefetches = await this.prefetchMissing(manifest.layers, download);
      await config;
      const t1 = performance.now();
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
      await Promise.all(layers.map((layer, i) => this.ensureLayer(layer, download, prefetches[i])));
      const t2 = performance.now();
      const rec = await this.deps.images.put({
        id: manifest.config.digest,
        ...names,
        manifestDigests,
        config: { digest: manifest.config.digest, size: manifest.config.size },
        layers,
        size: manifest.config.size + layers.reduce((sum, l) => sum + l.size, 0),
        user: imageConfig.config?.User ?? '',
        storedAt: new Date().toISOString(),
        ...(trust ? { trust } : {}),
      });
      // Where a pull's time goes (debug): the config, the layers (and how many workers), the record.
      this.deps.log.debug(
        { image: rec.id, configMs: ms(t1 - t0), layersMs: ms(t2 - t1), recordMs: ms(performance.now() - t2), workers: download ? this.workers.size : 0 },
        'pull: phases',
      );
      return rec;
    } finally {
      // A staged layer not adopted (a failed pull, a layer stored meanwhile) goes, once nothing writes it.
      await Promise.allSettled(prefetches.map((p) => p?.result));
      await Promise.all(prefetches.map((p) => (p?.staged ? this.deps.layers.discard(p.staged).catch(() => undefined) : undefined)));
      this.unpin(blobs, chain);
    }
  }

  private unpackLimits(): UnpackOptions['limits'] {
    return { maxBytes: this.deps.config.max_layer_bytes, maxEntries: this.deps.config.max_layer_entries };
  }

  /**
   * Starts the download of each layer whose blob is not stored (a prefetch per layer, undefined for a
   * stored one), and as many workers as those layers can use at once (by their weights).
   */
  private async prefetchMissing(layers: readonly Descriptor[], download: Download): Promise<(Prefetch | undefined)[]> {
    const stored = await Promise.all(layers.map((l) => this.deps.content.has(l.digest)));
    const missing = layers.filter((_l, i) => !stored[i]);
    if (missing.length === 0) return [];
    let units = 0;
    let n = 0;
    for (const l of missing) {
      units += layerWeight(l.size);
      if (units > this.downloads.capacity) break;
      n++;
    }
    const { ref, credentials } = download;
    this.workers.warm(this.deps.client.directBlobRequest(ref, missing[0].digest, { credentials }), Math.max(1, n));
    return layers.map((l, i) => (stored[i] ? undefined : this.prefetchLayer(l, download)));
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
   * A missing layer's blob downloaded, stored and unpacked into a staged dir before its chain ID is
   * known; its result is undefined when another pull stored the blob meanwhile (ensureLayer then unpacks
   * it from the store).
   */
  private prefetchLayer(desc: Descriptor, download: Download): Prefetch {
    const prefetch: Prefetch = { result: Promise.resolve(undefined) };
    prefetch.result = (async () => {
      prefetch.staged = await this.deps.layers.stage();
      const opts: UnpackOptions = { limits: this.unpackLimits(), signal: download.signal, onProgress: () => download.progress.touch() };
      return this.storeLayerBlob({ digest: desc.digest, mediaType: desc.mediaType, size: desc.size }, download, path.join(prefetch.staged.dir, 'diff'), opts);
    })();
    // Awaited by ensureLayer and by storeImage's clean-up; a failure before either looks is not unhandled.
    prefetch.result.catch(() => undefined);
    return prefetch;
  }

  /**
   * A layer: unpacked once. A blob that is not in the content store yet is downloaded, stored and
   * unpacked in one pass by berth-unpack, which writes the blob for the content store while it unpacks
   * (as many at a time as the download slots allow: layerWeight), fetching the blob itself, in one of
   * the shared workers (one process and one registry connection for many layers); when the first
   * endpoint does not serve it (a final answer other than 200), berthd downloads it with its own client
   * (mirror fallback, auth challenges) and pipes it in. A pull starts that before the config is in
   * (prefetchLayer): its staged dir becomes the layer here. A blob that is stored already (or being stored
   * by another pull) is unpacked from the store.
   */
  private async ensureLayer(layer: ImageLayer, download: Download | undefined, prefetch?: Prefetch): Promise<LayerInfo> {
    const { layers, content } = this.deps;
    const prefetched = await prefetch?.result;
    // The staged dir becomes the layer only with the tree in it.
    const staged = prefetched ? prefetch?.staged : undefined;
    return layers.ensure(
      layer.chainId,
      async (diffDir) => {
        const opts: UnpackOptions = {
          limits: this.unpackLimits(),
          signal: download?.signal,
          onProgress: () => download?.progress.touch(),
        };
        let result: UnpackResult | undefined = prefetched;
        if (!result && !(await content.has(layer.digest))) {
          if (!download) throw new InvalidArgumentError(`layer blob ${layer.digest} is missing`);
          result = await this.storeLayerBlob(layer, download, diffDir, opts);
        }
        result ??= await unpackLayer(content.path(layer.digest), layer.mediaType, diffDir, opts);
        if (result.diffId !== layer.diffId) {
          throw new InvalidArgumentError(
            `layer ${layer.digest}: its content has diffID ${result.diffId}, the image config says ${layer.diffId}`,
          );
        }
        return { diffId: result.diffId, size: result.uncompressedSize, entries: result.entries };
      },
      staged,
    );
  }

  /**
   * A layer blob downloaded, stored and unpacked into diffDir in one pass; undefined when another pull
   * stored the blob meanwhile. The download slot is held while berth-unpack works, not while berthd
   * commits what it wrote: the next layer starts as soon as a worker is free.
   */
  private async storeLayerBlob(
    layer: Pick<ImageLayer, 'digest' | 'mediaType' | 'size'>,
    download: Download,
    diffDir: string,
    opts: UnpackOptions,
  ): Promise<UnpackResult | undefined> {
    const queued = performance.now();
    let started = queued;
    let unpacked = queued;
    let streamed: UnpackResult | undefined;
    await this.deps.content.ingestWith(layer.digest, layer.size, (temp) =>
      this.downloads.run(layerWeight(layer.size), async () => {
        started = performance.now();
        const r = await this.downloadAndUnpack(layer, download, temp, diffDir, opts);
        unpacked = performance.now();
        streamed = r;
        return { digest: r.blobDigest, size: r.blobSize };
      }),
    );
    // Where a layer's time goes (debug): waiting for a slot, in berth-unpack, committing the blob.
    this.deps.log.debug(
      { layer: layer.digest, queuedMs: ms(started - queued), unpackMs: ms(unpacked - started), commitMs: ms(performance.now() - unpacked) },
      'pull: layer stored',
    );
    return streamed;
  }



  private async downloadAndUnpack(
    layer: Pick<ImageLayer, 'digest' | 'mediaType' | 'size'>,
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
    let result = await this.workers.run({ request: direct, blob: copy, mediaType: layer.mediaType, targetDir: diffDir, opts });
    if (!result) {
      this.deps.log.debug({ layer: layer.digest, url: direct.url }, 'direct blob download not served; downloading through berthd');
      const blob = await this.deps.client.openBlob(ref, layer.digest, { credentials, signal });
      result = await unpackLayerStream(blob.stream, copy, layer.mediaType, diffDir, opts);
    }
    progress.finish(layer.digest);
    return result;
  }
}
