// Unpacks one layer blob into a directory ready to be an overlayfs lower dir, by running berth-unpack
// (native/unpack) on it: decompression, the diffID hash, tar parsing and the file writes run in a
// process of their own, on the other core, while berthd goes on downloading; and berthd's memory does
// not grow with the layer.
//
// Contract: `targetDir` exists and is empty, and its parent is the caller's own scratch directory; the
// caller renames the target into place only when this resolves, and removes it when this rejects (the
// layer store does both), so a half-unpacked layer is never used. What berth-unpack guarantees about
// hostile layers (nothing written outside targetDir, limits against decompression bombs) is in
// native/unpack/.
import fs from 'node:fs';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, ResourceExhaustedError, UnavailableError } from '../../errors';
import { pipe } from '../../native';
import { helperBinary } from '../../util/helpers';
import { runCommand, type RunOptions } from '../../util/spawn';

export const UNPACK_BINARY = helperBinary('unpack');

export interface UnpackLimits {
  maxBytes: number;
  maxEntries: number;
}

export interface UnpackOptions {
  limits: UnpackLimits;
  signal?: AbortSignal;
  /** Called while the unpack is reading its blob (at most every PROGRESS_EVERY_MS), with the bytes
   * berth-unpack read since the last call. */
  onProgress?: (bytesRead: number) => void;
}

export interface UnpackResult {
  diffId: string;
  uncompressedSize: number;
  entries: number;
}

const PROGRESS_EVERY_MS = 200;

/** berth-unpack's exit statuses (native/unpack/main.c). */
const BAD_LAYER = 2;
const OVER_LIMIT = 3;
const DISK_FULL = 4;
const NOT_SERVED = 5;
const TRANSPORT = 6;

/** Bytes the process has read so far (/proc/PID/io rchar): it moves while the unpack makes progress. */
export function bytesRead(pid: number): number | undefined {
  try {
    const m = /^rchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Reports progress when the child's read count moved since the last look. */
function progressWatch(onProgress: UnpackOptions['onProgress']): ((pid: number) => void) | undefined {
  if (!onProgress) return undefined;
  let lastLook = 0;
  let lastRead = 0;
  return (pid) => {
    const now = Date.now();
    if (now - lastLook < PROGRESS_EVERY_MS) return;
    lastLook = now;
    const read = bytesRead(pid);
    if (read === undefined || read === lastRead) return;
    onProgress(read - lastRead);
    lastRead = read;
  };
}

export interface StreamedUnpackResult extends UnpackResult {
  /** The digest and size of the blob as it streamed in (and was written to the copy). */
  blobDigest: string;
  blobSize: number;
}

function unpackArgv(mediaType: string, limits: UnpackLimits, extra: string[], blob: string, targetDir: string): string[] {
  return [
    UNPACK_BINARY,
    '--media-type',
    mediaType,
    '--max-bytes',
    String(limits.maxBytes),
    '--max-entries',
    String(limits.maxEntries),
    ...extra,
    blob,
    targetDir,
  ];
}

/**
 * Runs berth-unpack (its stdin as runCommand takes it) and turns its exit status into berth's errors;
 * a URL that was not served resolves undefined.
 */
async function runUnpack(
  argv: string[],
  targetDir: string,
  opts: UnpackOptions,
  stdin: Pick<RunOptions, 'stdinFd' | 'input'> = {},
): Promise<Record<string, unknown> | undefined> {
  const run = await runCommand(argv, {
    timeoutMs: Number.POSITIVE_INFINITY,
    signal: opts.signal,
    onWait: progressWatch(opts.onProgress),
    ...stdin,
  });
  return outcome(run.code, run.signal, run.stdout, run.stderr);
}

/** berth-unpack's end (or, in --jobs mode, one job's) as berth's errors; "not served" is undefined. */
export function outcome(code: number | null, signal: number | null, stdout: string, stderr: string): Record<string, unknown> | undefined {
  const message = stderr.trim().replace(/^berth-unpack: /, '');
  switch (code) {
    case 0:
      return JSON.parse(stdout) as Record<string, unknown>;
    case BAD_LAYER:
      throw new InvalidArgumentError(message);
    case OVER_LIMIT:
      throw new ResourceExhaustedError(message);
    case DISK_FULL:
      throw new ResourceExhaustedError(`no space left on device while unpacking a layer: ${message}`);
    case NOT_SERVED:
      return undefined;
    case TRANSPORT:
      throw new UnavailableError(`downloading a layer failed: ${message}`);
    default:
      throw new Error(`unpacking a layer failed (berth-unpack ${signal ? `killed by signal ${signal}` : `exit ${code}`}): ${message}`);
  }
}

function unpackResult(out: Record<string, unknown> | undefined): UnpackResult {
  if (!out) throw new Error('berth-unpack answered "not served" for a local blob');
  return { diffId: String(out.diffId), uncompressedSize: Number(out.size), entries: Number(out.entries) };
}

export function streamedResult(out: Record<string, unknown> | undefined): StreamedUnpackResult {
  return { ...unpackResult(out), blobDigest: String(out?.blobDigest), blobSize: Number(out?.blobSize) };
}

/** A blob's URL with what berth-unpack needs to GET it (as the registry client's directBlobRequest). */
export interface DirectRequest {
  url: string;
  headers: Record<string, string>;
  caFile?: string;
  insecureTls: boolean;
}

/** Where a downloaded blob is stored while it is checked, its expected size, and who counts its bytes. */
export interface BlobCopy {
  size: number;
  copyTo: string;
  onBytes?: (n: number) => void;
}

/** Unpacks a blob that is in the content store. */
export async function unpackLayer(blobPath: string, mediaType: string, targetDir: string, opts: UnpackOptions): Promise<UnpackResult> {
  return unpackResult(await runUnpack(unpackArgv(mediaType, opts.limits, [], blobPath, targetDir), targetDir, opts));
}

/**
 * Unpacks a blob as it downloads, in one pass: `source` is piped into berth-unpack, which also writes
 * the blob to `copyTo` (a new file) and reports its digest, for the content store to check. A source
 * that fails fails the unpack with its own error, not with the truncated stream berth-unpack then saw.
 */
export async function unpackLayerStream(
  source: Readable,
  blob: BlobCopy,
  mediaType: string,
  targetDir: string,
  opts: UnpackOptions,
): Promise<StreamedUnpackResult> {
  const [readFd, writeFd] = pipe();
  let sink: net.Socket;
  try {
    sink = new net.Socket({ fd: writeFd, readable: false, writable: true });
  } catch (err) {
    fs.closeSync(readFd);
    fs.closeSync(writeFd);
    throw err;
  }
  let sourceError: unknown;
  source.once('error', (err) => (sourceError ??= err));
  // A write that fails because berth-unpack stopped reading (it failed) is not the error to report.
  const feeding = pipeline(source, sink).catch(() => undefined);
  const { onBytes } = blob;
  if (onBytes) source.on('data', (chunk: Buffer) => onBytes(chunk.length));
  const argv = unpackArgv(mediaType, opts.limits, ['--copy-to', blob.copyTo, '--blob-size', String(blob.size)], '-', targetDir);
  try {
    const out = await runUnpack(argv, targetDir, opts, { stdinFd: readFd });
    await feeding;
    if (sourceError) throw sourceError;
    return streamedResult(out);
  } catch (err) {
    throw sourceError ?? err;
  } finally {
    source.destroy();
    sink.destroy();
  }
}
