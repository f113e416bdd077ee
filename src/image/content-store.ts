// The content store under <root>/content/: `blobs/sha256/<hex>`, verified, and `ingest/` for downloads
// in progress. A blob reaches blobs/ only once its size and digest are checked, by rename, so a blob
// under its digest is always the right bytes; a bad or interrupted download leaves nothing behind.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError } from '../errors';
import { fsyncDir } from '../state/atomic-file';
import { Singleflight } from '../util/mutex';
import { COALESCE_BYTES } from '../util/coalesce';

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;
/** Manifests and configs are read whole; nothing that size is legitimate. */
const MAX_READ_BYTES = 16 * 1024 * 1024;

export interface IngestOptions {
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

function hexOf(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new InvalidArgumentError(`unsupported or malformed digest ${JSON.stringify(digest)}`);
  return m[1];
}

/** Counts and hashes a stream as it passes, and stops it as soon as it grows past the expected size. */
class Verifier extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly digest: string,
    private readonly expectedSize: number | undefined,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      done(new InvalidArgumentError(`blob ${this.digest} is larger than its expected ${this.expectedSize} bytes`));
      return;
    }
    this.hash.update(chunk);
    this.onProgress?.(chunk.length);
    done(null, chunk);
  }
}

/**
 * fsyncs a directory for many renames at once: a caller waits for a sync that starts after its call (so
 * after its rename); callers that come while one waits to start share it. A pull that commits 30
 * blobs at once makes a few directory syncs, not 30, each still after the renames it covers.
 */
export function coalescedDirSync(dir: string): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  return () => {
    if (queued) return queued;
    const next = (async () => {
      await running?.catch(() => undefined);
      queued = undefined;
      const sync = fsyncDir(dir);
      running = sync;
      try {
        await sync;
      } finally {
        if (running === sync) running = undefined;
      }
    })();
    queued = next;
    return next;
  };
}

export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;
  private readonly ingests = new Singleflight<void>();
  private readonly syncBlobsDir: () => Promise<void>;

  constructor(root: string) {
    this.blobsDir = path.join(root, 'content', 'blobs', 'sha256');
    this.ingestDir = path.join(root, 'content', 'ingest');
    this.syncBlobsDir = coalescedDirSync(this.blobsDir);
  }

  /** Creates the directories and removes downloads a crash interrupted (never trusted). */
  async recover(): Promise<void> {
    await fsp.mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
    await fsp.rm(this.ingestDir, { recursive: true, force: true });
    await fsp.mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
  }

  path(digest: string): string {
    return path.join(this.blobsDir, hexOf(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      await fsp.access(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  async read(digest: string): Promise<Buffer> {
    let handle;
    try {
      handle = await fsp.open(this.path(digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`blob ${digest} is not in the content store`);
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (size > MAX_READ_BYTES) throw new InvalidArgumentError(`blob ${digest} is ${size} bytes, too large to read whole`);
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  /**
   * Streams a blob into the store, verifying size and digest on the way. Concurrent ingests of one
   * digest are joined; an ingest of a blob already stored drains nothing and returns at once.
   */
  ingest(digest: string, expectedSize: number | undefined, source: Readable, opts: IngestOptions = {}): Promise<void> {
    return this.ingestWith(digest, expectedSize, (temp) => this.writeTemp(digest, expectedSize, source, temp, opts), () => source.destroy());
  }

  /**
   * Ingests a blob that `produce` writes (and syncs) to the temp path it is given, returning the digest
   * and size it saw; the store checks them against the expected ones and commits the file. Joined with
   * other ingests of the digest like `ingest`: produce is not called when the blob was stored or being
   * stored already (onJoined is).
   */
  ingestWith(
    digest: string,
    expectedSize: number | undefined,
    produce: (temp: string) => Promise<{ digest: string; size: number }>,
    onJoined?: () => void,
  ): Promise<void> {
    hexOf(digest);
    const running = this.ingests.running(digest);
    if (running) {
      onJoined?.();
      return running;
    }
    return this.ingests.do(digest, async () => {
      if (await this.has(digest)) {
        onJoined?.();
        return;
      }
      await this.commit(digest, expectedSize, produce);
    });
  }

  private async commit(
    digest: string,
    expectedSize: number | undefined,
    produce: (temp: string) => Promise<{ digest: string; size: number }>,
  ): Promise<void> {
    const temp = path.join(this.ingestDir, `${hexOf(digest)}.${randomBytes(6).toString('hex')}`);
    try {
      const got = await produce(temp);
      if (expectedSize !== undefined && got.size !== expectedSize) {
        throw new InvalidArgumentError(`blob ${digest}: received ${got.size} bytes, expected ${expectedSize}`);
      }
      if (got.digest !== digest) throw new InvalidArgumentError(`blob digest mismatch: expected ${digest}, got ${got.digest}`);
      await fsp.rename(temp, this.path(digest));
      await this.syncBlobsDir();
    } catch (err) {
      await fsp.rm(temp, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
        throw new ResourceExhaustedError(`no space left on device while writing blob ${digest}`, { cause: err });
      }
      throw err;
    }
  }

  /** Writes a stream to temp (synced), hashing and counting it. */
  private async writeTemp(
    digest: string,
    expectedSize: number | undefined,
    source: Readable,
    temp: string,
    opts: IngestOptions,
  ): Promise<{ digest: string; size: number }> {
    const verifier = new Verifier(digest, expectedSize, opts.onProgress);
    const out = fs.createWriteStream(temp, { mode: 0o600, flags: 'wx', highWaterMark: COALESCE_BYTES });
    // The write stream gathers what arrives while a write is in flight into one writev.
    await pipeline(source, verifier, out, { signal: opts.signal });
    const handle = await fsp.open(temp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { digest: `sha256:${verifier.hash.digest('hex')}`, size: verifier.bytes };
  }

  /** Stores a small blob held in memory (a manifest, a config) and returns its digest. */
  async writeBlob(data: Buffer): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await this.ingest(digest, data.length, Readable.from([data]));
    return digest;
  }

  async delete(digest: string): Promise<void> {
    await fsp.rm(this.path(digest), { force: true });
  }

  async list(): Promise<string[]> {
    return (await fsp.readdir(this.blobsDir)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  async usage(): Promise<{ bytes: number; inodes: number }> {
    let bytes = 0;
    let inodes = 0;
    for (const name of await fsp.readdir(this.blobsDir)) {
      const st = await fsp.stat(path.join(this.blobsDir, name)).catch(() => undefined);
      if (!st) continue;
      bytes += st.size;
      inodes++;
    }
    return { bytes, inodes };
  }
}
