// Unpacks one image layer into a directory ready to be an overlayfs lower dir.
//
// Contract: `targetDir` exists and is empty; the caller renames it into place only when this resolves,
// and removes it when this rejects (the layer store does both), so a half-unpacked layer is never used.
//
// Hostile input never escapes targetDir: names with `..`, absolute names and NUL bytes are refused, and
// every parent of an entry is walked component by component without following symlinks — a parent that
// is a symlink is refused, whatever it points to. Size and entry limits stop decompression bombs while
// streaming. Whiteouts become overlayfs whiteouts (0/0 char devices) and opaque-dir xattrs.
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { InvalidArgumentError, ResourceExhaustedError } from '../../errors';
import { lsetxattr, makedev, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../../native';
import { decompressed } from './decompress';
import { COALESCE_BYTES } from '../../util/coalesce';
import { TarFormatError, TarReader, type TarHeader } from './tar-parser';

export interface UnpackLimits {
  maxBytes: number;
  maxEntries: number;
}

export interface UnpackOptions {
  limits: UnpackLimits;
  signal?: AbortSignal;
  onProgress?: (bytes: number) => void;
}

export interface UnpackResult {
  diffId: string;
  uncompressedSize: number;
  entries: number;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';
const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

/** Hashes and counts the uncompressed tar stream, and stops it at the size limit. */
class DiffMeter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(new ResourceExhaustedError(`layer is larger than the limit of ${this.maxBytes} uncompressed bytes (image.max_layer_bytes)`));
      return;
    }
    this.hash.update(chunk);
    this.onProgress?.(chunk.length);
    done(null, chunk);
  }
}

/** The entry's path as components, or an error naming it: never absolute, never `..`. */
export function cleanEntryPath(name: string): string[] {
  if (name.includes('\0')) throw new InvalidArgumentError(`layer entry ${JSON.stringify(name)} contains a NUL byte`);
  if (name.startsWith('/')) throw new InvalidArgumentError(`layer entry ${JSON.stringify(name)} is an absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new InvalidArgumentError(`layer entry ${JSON.stringify(name)} contains ".."`);
  return parts;
}

class LayerWriter {
  /** Directories known to be real directories inside the layer (not symlinks), relative paths. */
  private readonly safeDirs = new Set<string>(['']);
  private readonly dirTimes: Array<[string, number]> = [];
  entries = 0;

  constructor(
    private readonly root: string,
    private readonly limits: UnpackLimits,
  ) {}

  private abs(rel: string): string {
    return rel ? path.join(this.root, rel) : this.root;
  }

  /** Makes sure every parent of rel is a real directory in the layer, creating missing ones. */
  private async ensureParents(parts: readonly string[], entry: string): Promise<void> {
    let rel = '';
    for (const part of parts) {
      rel = rel ? `${rel}/${part}` : part;
      if (this.safeDirs.has(rel)) continue;
      const st = await fsp.lstat(this.abs(rel)).catch(() => undefined);
      if (!st) {
        await fsp.mkdir(this.abs(rel), { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw new InvalidArgumentError(`layer entry ${JSON.stringify(entry)} goes through the symlink ${JSON.stringify(rel)}`);
      } else if (!st.isDirectory()) {
        throw new InvalidArgumentError(`layer entry ${JSON.stringify(entry)} has a parent ${JSON.stringify(rel)} that is not a directory`);
      }
      this.safeDirs.add(rel);
    }
  }

  /** Removes whatever is at rel (a later entry replaces an earlier one, as tar does). */
  private async clear(rel: string, keepDir: boolean): Promise<void> {
    const st = await fsp.lstat(this.abs(rel)).catch(() => undefined);
    if (!st) return;
    if (keepDir && st.isDirectory()) return;
    await fsp.rm(this.abs(rel), { recursive: true, force: true });
    for (const d of [...this.safeDirs]) if (d === rel || d.startsWith(`${rel}/`)) this.safeDirs.delete(d);
  }

  private async metadata(rel: string, h: TarHeader, kind: 'dir' | 'symlink' | 'other'): Promise<void> {
    const target = this.abs(rel);
    await fsp.lchown(target, h.uid, h.gid);
    if (kind !== 'symlink') await fsp.chmod(target, h.mode);
    for (const [name, value] of Object.entries(h.xattrs)) {
      if (name.startsWith('trusted.overlay.')) continue; // only berth writes overlay's own attributes
      if (kind === 'symlink' && name.startsWith('user.')) continue; // the kernel refuses user.* on symlinks
      lsetxattr(target, name, value);
    }
    if (kind === 'dir') this.dirTimes.push([target, h.mtime]);
    else await fsp.lutimes(target, h.mtime, h.mtime);
  }

  async write(h: TarHeader, reader: TarReader): Promise<void> {
    if (++this.entries > this.limits.maxEntries) {
      throw new ResourceExhaustedError(`layer has more than ${this.limits.maxEntries} entries (image.max_layer_entries)`);
    }
    const parts = cleanEntryPath(h.path);
    if (parts.length === 0) {
      if (h.type === 'dir') await this.metadata('', h, 'dir');
      return;
    }
    const base = parts[parts.length - 1];
    const parents = parts.slice(0, -1);
    await this.ensureParents(parents, h.path);
    const parentRel = parents.join('/');
    if (base === OPAQUE) {
      lsetxattr(this.abs(parentRel), OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const gone = parentRel ? `${parentRel}/${base.slice(WHITEOUT_PREFIX.length)}` : base.slice(WHITEOUT_PREFIX.length);
      cleanEntryPath(gone);
      await this.clear(gone, false);
      mknod(this.abs(gone), S_IFCHR, makedev(0, 0));
      return;
    }
    const rel = parts.join('/');
    await this.clear(rel, h.type === 'dir');
    const target = this.abs(rel);
    switch (h.type) {
      case 'dir':
        await fsp.mkdir(target, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        this.safeDirs.add(rel);
        return this.metadata(rel, h, 'dir');
      case 'file':
        await this.writeFile(target, reader);
        return this.metadata(rel, h, 'other');
      case 'symlink':
        await fsp.symlink(h.linkpath, target);
        return this.metadata(rel, h, 'symlink');
      case 'hardlink':
        return this.hardlink(rel, h);
      case 'char':
      case 'block':
        mknod(target, (h.type === 'char' ? S_IFCHR : S_IFBLK) | h.mode, makedev(h.devmajor, h.devminor));
        return this.metadata(rel, h, 'other');
      case 'fifo':
        mknod(target, S_IFIFO | h.mode, 0);
        return this.metadata(rel, h, 'other');
      default:
        throw new InvalidArgumentError(`layer entry ${JSON.stringify(h.path)} has an unsupported type ${JSON.stringify(h.typeflag)}`);
    }
  }

  private async writeFile(target: string, reader: TarReader): Promise<void> {
    const fd = await fsp.open(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    // Pieces are gathered into large writes: each write costs a thread-pool round trip.
    let pending: Buffer[] = [];
    let pendingSize = 0;
    const flush = async () => {
      if (pendingSize === 0) return;
      // One writev of the pieces as they are: no copy into a larger buffer.
      let pieces = pending;
      pending = [];
      pendingSize = 0;
      while (pieces.length) {
        let written = (await fd.writev(pieces)).bytesWritten;
        while (pieces.length && written >= pieces[0].length) written -= (pieces.shift() as Buffer).length;
        if (written > 0) pieces = [pieces[0].subarray(written), ...pieces.slice(1)];
      }
    };
    try {
      await reader.readBody(async (chunk) => {
        pending.push(chunk);
        pendingSize += chunk.length;
        if (pendingSize >= COALESCE_BYTES) await flush();
      });
      await flush();
    } finally {
      await fd.close();
    }
  }

  private async hardlink(rel: string, h: TarHeader): Promise<void> {
    const targetParts = cleanEntryPath(h.linkpath);
    if (targetParts.length === 0) throw new InvalidArgumentError(`hard link ${JSON.stringify(h.path)} points at the layer root`);
    await this.ensureParents(targetParts.slice(0, -1), h.linkpath);
    const source = this.abs(targetParts.join('/'));
    const st = await fsp.lstat(source).catch(() => undefined);
    if (!st) throw new InvalidArgumentError(`hard link ${JSON.stringify(h.path)} points at ${JSON.stringify(h.linkpath)}, which is not in the layer`);
    if (st.isDirectory()) throw new InvalidArgumentError(`hard link ${JSON.stringify(h.path)} points at a directory`);
    await fsp.link(source, this.abs(rel));
  }

  /** Directory mtimes last: creating their children changed them. */
  async finish(): Promise<void> {
    for (const [dir, mtime] of this.dirTimes.reverse()) await fsp.utimes(dir, mtime, mtime);
  }
}

function asLayerError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return new ResourceExhaustedError('no space left on device while unpacking a layer', { cause: err });
  if (err instanceof TarFormatError) return new InvalidArgumentError(`corrupt layer: ${err.message}`);
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') return new InvalidArgumentError(`corrupt gzip layer: ${(err as Error).message}`);
  if (err instanceof Error && /unexpected end of archive|unexpected end of file/.test(err.message)) {
    return new InvalidArgumentError(`corrupt layer: ${err.message}`);
  }
  return err;
}

export async function unpackLayer(source: Readable, mediaType: string, targetDir: string, opts: UnpackOptions): Promise<UnpackResult> {
  const meter = new DiffMeter(opts.limits.maxBytes, opts.onProgress);
  try {
    const tarStream = await decompressed(source, mediaType);
    tarStream.on('error', (err) => meter.destroy(err));
    tarStream.pipe(meter);
    const onAbort = () => meter.destroy(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error('unpack cancelled'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const reader = new TarReader(meter);
      const writer = new LayerWriter(targetDir, opts.limits);
      for (let h = await reader.next(); h; h = await reader.next()) await writer.write(h, reader);
      await writer.finish();
      // Read to the end: the diffID covers the whole stream, including the end-of-archive blocks.
      await reader.drain();
      return { diffId: `sha256:${meter.hash.digest('hex')}`, uncompressedSize: meter.bytes, entries: writer.entries };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } catch (err) {
    source.destroy();
    meter.destroy();
    throw asLayerError(err);
  }
}
