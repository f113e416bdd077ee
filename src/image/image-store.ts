// Image records under <root>/images/<id hex>.json, and the index that finds an image by ID, by any of
// its tags, by any of its digests, or by a unique ID prefix. The records are the source of truth for
// what uses which blobs and layers (see gc.ts): nothing keeps a separate reference count to drift.
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from '../state/atomic-file';
import { ChangeWatch } from '../util/change-watch';
import { Mutex } from '../util/mutex';
import { formatReference, parseReference, type ImageReference } from './reference';
import type { Admission } from './trust/verifier';

export interface ImageLayer {
  /** Digest of the layer blob as stored in the registry (compressed). */
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
  chainId: string;
}

export interface ImageRecord {
  /** The image ID: the digest of its config. */
  id: string;
  /** Normalised `registry/repository:tag` names. */
  repoTags: string[];
  /** `registry/repository@sha256:…` of the manifests (or indexes) it was pulled by. */
  repoDigests: string[];
  /** Digests of the manifest and index blobs that describe this image, kept in the content store. */
  manifestDigests: string[];
  config: { digest: string; size: number };
  layers: ImageLayer[];
  /** Bytes of the config and all layer blobs, as the registry holds them. */
  size: number;
  /** The config's USER, as written in the image. */
  user: string;
  /** When berth first stored the image (RFC 3339). */
  storedAt: string;
  /** What the trust policy admitted it by, at its last pull (absent for imports and older records). */
  trust?: Admission;
}

const ID_RE = /^sha256:[a-f0-9]{64}$/;
const HEX_RE = /^[a-f0-9]+$/;

const nameOf = (ref: ImageReference): string => `${ref.registry}/${ref.repository}`;

export class ImageStore {
  private readonly byId = new Map<string, ImageRecord>();
  private readonly byName = new Map<string, string>();
  private readonly writes = new Mutex();
  private loadedMtimeMs = -1;
  /** Set by an inotify event in the directory, so that ImageStatus or ListImages costs no syscall meanwhile. */
  private changes: ChangeWatch | undefined;
  /** The list() result, reused until the index changes (kubelet lists images every few seconds). */
  private listed: ImageRecord[] | undefined;

  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.changes = new ChangeWatch([this.dir]);
    await this.reload();
  }

  /** Reads every record from disk again (another process, such as `berthd images import`, may write). */
  async reload(): Promise<void> {
    const stat = await fs.stat(this.dir);
    const records: ImageRecord[] = [];
    for (const name of await fs.readdir(this.dir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(name)) continue;
      records.push(JSON.parse(await fs.readFile(path.join(this.dir, name), 'utf8')) as ImageRecord);
    }
    this.byId.clear();
    this.byName.clear();
    this.listed = undefined;
    for (const r of records) this.index(r);
    this.loadedMtimeMs = stat.mtimeMs;
  }

  /**
   * Reloads when the directory changed behind our back (another process wrote a record): looked at only
   * after an inotify event there, which a write by another process queues before that process even returns.
   */
  async refresh(): Promise<void> {
    if (this.changes && !this.changes.take()) return;
    const stat = await fs.stat(this.dir);
    if (stat.mtimeMs !== this.loadedMtimeMs) await this.reload();
  }

  /** Our own writes change the directory's mtime too; they need no reload. */
  private async markSynced(): Promise<void> {
    this.loadedMtimeMs = (await fs.stat(this.dir)).mtimeMs;
  }

  private index(record: ImageRecord): void {
    this.listed = undefined;
    this.byId.set(record.id, record);
    for (const name of [...record.repoTags, ...record.repoDigests]) this.byName.set(name, record.id);
  }

  private unindex(record: ImageRecord): void {
    this.listed = undefined;
    this.byId.delete(record.id);
    for (const name of [...record.repoTags, ...record.repoDigests]) {
      if (this.byName.get(name) === record.id) this.byName.delete(name);
    }
  }

  private file(id: string): string {
    return path.join(this.dir, `${id.slice('sha256:'.length)}.json`);
  }

  /** Every image. The same array is returned until the store changes: treat it as read-only. */
  list(): readonly ImageRecord[] {
    this.listed ??= [...this.byId.values()];
    return this.listed;
  }

  get(id: string): ImageRecord | undefined {
    return this.byId.get(id);
  }

  /**
   * Finds an image by ID (`sha256:…` or bare hex), by reference (`busybox`, `name:tag`, `name@digest`),
   * or by a unique ID prefix. Returns undefined when nothing matches; throws InvalidArgumentError
   * only when the text is neither an ID nor a valid reference.
   */
  resolve(text: string): ImageRecord | undefined {
    if (ID_RE.test(text)) return this.byId.get(text);
    if (/^[a-f0-9]{64}$/.test(text)) return this.byId.get(`sha256:${text}`);
    let ref: ImageReference | undefined;
    try {
      ref = parseReference(text);
    } catch (err) {
      if (!HEX_RE.test(text)) throw err;
    }
    if (ref) {
      const id = ref.digest
        ? this.byName.get(`${nameOf(ref)}@${ref.digest}`)
        : this.byName.get(formatReference(ref));
      if (id) return this.byId.get(id);
    }
    if (HEX_RE.test(text) && text.length >= 4) {
      const matches = [...this.byId.keys()].filter((id) => id.startsWith(`sha256:${text}`));
      if (matches.length === 1) return this.byId.get(matches[0]);
    }
    return undefined;
  }

  /**
   * Stores an image, merging its names with an existing record of the same ID. A tag moves: any
   * other image that had it loses it (and keeps its digests, as a dangling image the kubelet may collect).
   */
  put(record: ImageRecord): Promise<ImageRecord> {
    return this.writes.run(async () => {
      const existing = this.byId.get(record.id);
      const merged: ImageRecord = existing
        ? {
            ...existing,
            repoTags: union(existing.repoTags, record.repoTags),
            repoDigests: union(existing.repoDigests, record.repoDigests),
            manifestDigests: union(existing.manifestDigests, record.manifestDigests),
            ...(record.trust ? { trust: record.trust } : {}),
          }
        : record;
      for (const tag of record.repoTags) {
        const owner = this.byName.get(tag);
        if (owner && owner !== record.id) await this.dropName(owner, tag);
      }
      await writeJsonAtomic(this.file(merged.id), merged);
      if (existing) this.unindex(existing);
      this.index(merged);
      await this.markSynced();
      return merged;
    });
  }

  private async dropName(id: string, name: string): Promise<void> {
    const record = this.byId.get(id);
    if (!record) return;
    const updated = { ...record, repoTags: record.repoTags.filter((t) => t !== name) };
    await writeJsonAtomic(this.file(id), updated);
    this.unindex(record);
    this.index(updated);
  }

  /** Removes the record; the blobs and layers it used are freed by the garbage collector. */
  remove(id: string): Promise<void> {
    return this.writes.run(async () => {
      const record = this.byId.get(id);
      if (!record) return;
      await fs.rm(this.file(id), { force: true });
      this.unindex(record);
      await this.markSynced();
    });
  }
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}

export { nameOf };
