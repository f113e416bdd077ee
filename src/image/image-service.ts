import fs from 'node:fs/promises';
// The image service's domain facade: the stores beneath it, lookups, removal with garbage collection,
// usage for the kubelet's image GC, and pulls (pull.ts). No gRPC types here.
import path from 'node:path';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';
import { LayerStore } from '../storage/layer-store';
import { ChangeWatch } from '../util/change-watch';
import { Mutex } from '../util/mutex';
import { ContentStore } from './content-store';
import { collectGarbage, type GcResult, type UsageSource } from './gc';
import { ImageStore, type ImageRecord } from './image-store';
import type { PullMetrics } from '../metrics/registry';
import { Puller, type PullRequester } from './pull';
import { TrustVerifier } from './trust/verifier';
import { importArchive } from './import';
import { RegistryClient, type Credentials } from './registry/client';

export type ImageConfigJson = Record<string, unknown> & { config?: { User?: string } };

export interface ImageFsUsage {
  mountpoint: string;
  bytes: number;
  inodes: number;
}

export class ImageService {
  private readonly usageSources: UsageSource[] = [];
  /** Removals and collections run one at a time. */
  private readonly gcLock = new Mutex();

  private readonly puller: Puller;

  private constructor(
    readonly root: string,
    readonly content: ContentStore,
    readonly layers: LayerStore,
    readonly images: ImageStore,
    private readonly config: BerthConfig['image'],
    private readonly log: Logger,
    metrics: PullMetrics,
  ) {
    const client = new RegistryClient(config, this.log);
    const trust = new TrustVerifier(config.trust, client, this.log, metrics);
    this.puller = new Puller({ client, content, layers, images, config, log: this.log, metrics, trust, freeUnused: async () => void (await this.freeUnused()) });
    this.usageSources.push(this.puller);
  }

  static async open(root: string, config: BerthConfig['image'], log: Logger, metrics: PullMetrics): Promise<ImageService> {
    const content = new ContentStore(root);
    await content.recover();
    // Staging dirs of imports a crash interrupted.
    for (const name of await fs.readdir(root)) {
      if (name.startsWith('import-')) await fs.rm(path.join(root, name), { recursive: true, force: true });
    }
    const layers = new LayerStore(path.join(root, 'layers'));
    await layers.init();
    const images = new ImageStore(path.join(root, 'images'));
    await images.init();
    const service = new ImageService(root, content, layers, images, config, log.child({ module: 'image' }), metrics);
    log.info({ images: images.list().length }, 'image store loaded');
    return service;
  }

  /** berthd's stop: the pull workers end. */
  close(): void {
    this.puller.close();
  }

  addUsageSource(source: UsageSource): void {
    this.usageSources.push(source);
  }

  async list(): Promise<readonly ImageRecord[]> {
    await this.images.refresh();
    return this.images.list();
  }

  async find(text: string): Promise<ImageRecord | undefined> {
    await this.images.refresh();
    return this.images.resolve(text);
  }

  async configOf(image: ImageRecord): Promise<ImageConfigJson> {
    return JSON.parse((await this.content.read(image.config.digest)).toString('utf8')) as ImageConfigJson;
  }

  /** An image is pinned when any of its names or its ID is listed in image.pinned_images. */
  isPinned(image: ImageRecord): boolean {
    return this.config.pinned_images.some((name) => {
      try {
        return this.images.resolve(name)?.id === image.id;
      } catch {
        return false;
      }
    });
  }

  /** Pulls an image from its registry (or a mirror); joins a pull of the same image in progress. */
  /** `pod` names who asked (in the log), and its namespace the trust policy (a namespace's own, if any). */
  pull(text: string, credentials: Credentials | undefined, signal?: AbortSignal, pod?: PullRequester): Promise<ImageRecord> {
    return this.puller.pull(text, credentials, signal, pod);
  }

  /** Loads the images of an OCI layout or docker save archive into the store. */
  importArchive(file: string): Promise<ImageRecord[]> {
    return importArchive(file, this.root, this.content, this.puller, this.config.platform);
  }

  /** Removes an image by ID, tag or digest, and frees what only it used. Missing images are fine. */
  async remove(text: string): Promise<void> {
    await this.gcLock.run(async () => {
      const image = await this.find(text);
      if (!image) return;
      await this.images.remove(image.id);
      this.log.info({ id: image.id, tags: image.repoTags }, 'image removed');
      await collectGarbage(this.images.list(), this.usageSources, this.content, this.layers, this.log);
    });
  }

  /**
   * Frees blobs and layers nothing uses: after a pull that ran out of space, and at start-up, for what
   * pulls and removals cut short by a crash left. Reference counts are derived, so this needs no intent
   * record: in steady state nothing is unreferenced.
   */
  async freeUnused(): Promise<GcResult> {
    return this.gcLock.run(async () => {
      // Records another process (berthd images import) wrote since count too.
      await this.images.refresh();
      return collectGarbage(this.images.list(), this.usageSources, this.content, this.layers, this.log);
    });
  }

  /** The last usage worked out, and what tells that blobs or layers came or went since. */
  private usageCache: ImageFsUsage | undefined;
  private usageChanges: ChangeWatch | undefined;

  /**
   * Bytes and inodes used by the image store: blobs, plus the unpacked layers' own accounting. Blobs and
   * layers never change once stored, only come and go (an entry of their directory made or removed): the
   * answer is worked out again only after an inotify event there (the kubelet asks every 10 s).
   */
  async usage(): Promise<ImageFsUsage> {
    this.usageChanges ??= new ChangeWatch([this.content.blobsDir, this.layers.dir]);
    if (!this.usageChanges.take() && this.usageCache) return this.usageCache;
    const blobs = await this.content.usage();
    let bytes = blobs.bytes;
    let inodes = blobs.inodes;
    for (const chainId of await this.layers.list()) {
      const info = await this.layers.get(chainId);
      if (!info) continue;
      bytes += info.size;
      inodes += info.entries + 2;
    }
    this.usageCache = { mountpoint: this.root, bytes, inodes };
    return this.usageCache;
  }

}
