// berth-unpack in --jobs mode: one process downloads, stores and unpacks layer after layer, keeping its
// connection to the registry alive, instead of one process (and one connection, and for HTTPS one
// handshake) per layer. berthd keeps a few such workers (UnpackWorkers) for every pull, and ends each one
// after a few seconds without a job, as an HTTP client ends an idle keep-alive connection. A job
// downloads a blob (berth-unpack GETs it itself: its bytes never pass through berthd), writes the copy
// for the content store and unpacks it into targetDir; the caller owns targetDir and the copy, and
// commits them only when the job resolves. A URL not served (no answer, or a final answer other than
// 200) resolves undefined, having written nothing: the caller then downloads it its own way.
import fs from 'node:fs';
import net from 'node:net';
import { InvalidArgumentError } from '../../errors';
import { pipe, posixSpawnAsync } from '../../native';
import { waitForExit } from '../../util/spawn';
import {
  UNPACK_BINARY,
  bytesRead,
  outcome,
  streamedResult,
  type BlobCopy,
  type DirectRequest,
  type StreamedUnpackResult,
  type UnpackLimits,
  type UnpackOptions,
} from './unpack-layer';

const PROGRESS_EVERY_MS = 200;
/** What of a worker's stderr is kept for the message of a failure (its last line is the one). */
const STDERR_KEEP = 8 * 1024;

export interface UnpackJob {
  request: DirectRequest;
  blob: BlobCopy;
  mediaType: string;
  targetDir: string;
  opts: UnpackOptions;
}

interface Pending {
  job: UnpackJob;
  resolve: (r: StreamedUnpackResult | undefined) => void;
  reject: (err: unknown) => void;
}

/** A job line's value: berthd makes the paths and URLs, but nothing may break the line framing. */
function field(name: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new InvalidArgumentError(`a layer job's ${name} holds a CR, LF or NUL byte`);
  return `${name} ${value}\n`;
}

function jobText(job: UnpackJob): string {
  return (
    field('url', job.request.url) +
    field('copy-to', job.blob.copyTo) +
    field('blob-size', String(job.blob.size)) +
    field('media-type', job.mediaType) +
    field('dir', job.targetDir) +
    Object.entries(job.request.headers)
      .map(([k, v]) => field('header', `${k}: ${v}`))
      .join('') +
    '\n'
  );
}

class Worker {
  /** 0 until the spawn (on the thread pool) is done. */
  private pid = 0;
  private readonly ready: Promise<void>;
  private readonly stdin: number;
  private stdoutBuf = '';
  private stderrBuf = '';
  private current: Pending | undefined;
  private progress: NodeJS.Timeout | undefined;
  /** The worker's read count when this job's progress was first looked at. */
  private lastRead: number | undefined;
  private counted = 0;
  private ended = false;
  private killed = false;
  private stdinClosed = false;
  private onAbort: (() => void) | undefined;

  constructor(
    argv: string[],
    private readonly onIdle: (w: Worker) => void,
    private readonly onGone: (w: Worker) => void,
  ) {
    const [inRead, inWrite] = pipe();
    const [outRead, outWrite] = pipe();
    const [errRead, errWrite] = pipe();
    this.stdin = inWrite;
    this.ready = posixSpawnAsync(argv[0], argv, { stdinFd: inRead, stdoutFd: outWrite, stderrFd: errWrite })
      .finally(() => {
        for (const fd of [inRead, outWrite, errWrite]) fs.closeSync(fd);
      })
      .then(
        (pid) => {
          this.pid = pid;
          if (this.killed) this.signalKill();
          this.attach(outRead, errRead);
        },
        (err: unknown) => {
          for (const fd of [outRead, errRead]) fs.closeSync(fd);
          this.ended = true;
          this.closeStdin();
          this.onGone(this);
          throw err;
        },
      );
    // A job waits for it and sees the failure; a worker that never got one ends quietly.
    this.ready.catch(() => undefined);
  }

  private attach(outRead: number, errRead: number): void {
    const out = new net.Socket({ fd: outRead, readable: true, writable: false });
    const errs = new net.Socket({ fd: errRead, readable: true, writable: false });
    out.setEncoding('utf8');
    errs.setEncoding('utf8');
    out.on('data', (chunk: string) => this.onStdout(chunk));
    errs.on('data', (chunk: string) => {
      this.stderrBuf = (this.stderrBuf + chunk).slice(-STDERR_KEEP);
    });
    out.on('error', () => undefined);
    errs.on('error', () => undefined);
    // Its stdout ends when it exits: reap it, and fail the job it had with its exit status.
    let closed = 0;
    const onClose = () => {
      if (++closed === 2) void this.reap();
    };
    out.on('close', onClose);
    errs.on('close', onClose);
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  run(p: Pending): void {
    this.current = p;
    this.counted = 0;
    this.lastRead = undefined;
    const signal = p.job.opts.signal;
    if (signal) {
      this.onAbort = () => this.kill();
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.progress = setInterval(() => this.reportProgress(), PROGRESS_EVERY_MS);
    this.progress.unref();
    this.ready.then(
      () => this.send(p),
      (err: unknown) => {
        this.settle();
        p.reject(err);
      },
    );
  }

  private send(p: Pending): void {
    if (this.current !== p) return; // killed while the spawn was on its way: reap fails the job
    try {
      p.job.opts.signal?.throwIfAborted();
      const text = Buffer.from(jobText(p.job));
      // The worker is idle, so the pipe is empty: a job (well under the pipe's 64 KiB) never blocks.
      for (let off = 0; off < text.length; ) off += fs.writeSync(this.stdin, text, off);
    } catch (err) {
      this.kill();
      this.settle();
      p.reject(err);
    }
  }

  /** Ends an idle worker: its stdin closes and it exits. */
  close(): void {
    this.ended = true;
    this.closeStdin();
  }

  /** Once only: a second close could close whatever reused the number meanwhile. */
  private closeStdin(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    fs.closeSync(this.stdin);
  }

  kill(): void {
    this.killed = true;
    if (this.pid) this.signalKill();
    this.close();
  }

  private signalKill(): void {
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }

  /**
   * Bytes read stand for bytes downloaded, never more than the blob's size. The first look only takes
   * the count to start from (most layers are done before it: no /proc read for them); what was read
   * before it is counted when the job ends.
   */
  private reportProgress(): void {
    const p = this.current;
    if (!p || !this.pid) return;
    const read = bytesRead(this.pid);
    if (read === undefined) return;
    if (this.lastRead === undefined) {
      this.lastRead = read;
      return;
    }
    if (read === this.lastRead) return;
    const n = read - this.lastRead;
    this.lastRead = read;
    const add = Math.min(n, p.job.blob.size - this.counted);
    this.counted += add;
    if (add > 0) p.job.blob.onBytes?.(add);
    p.job.opts.onProgress?.(n);
  }

  private settle(): Pending | undefined {
    const p = this.current;
    this.current = undefined;
    if (this.progress) clearInterval(this.progress);
    this.progress = undefined;
    if (p?.job.opts.signal && this.onAbort) p.job.opts.signal.removeEventListener('abort', this.onAbort);
    this.onAbort = undefined;
    return p;
  }

  private onStdout(chunk: string): void {
    this.stdoutBuf += chunk;
    for (let nl = this.stdoutBuf.indexOf('\n'); nl >= 0; nl = this.stdoutBuf.indexOf('\n')) {
      const line = this.stdoutBuf.slice(0, nl);
      this.stdoutBuf = this.stdoutBuf.slice(nl + 1);
      const p = this.settle();
      if (!p) continue;
      let result: StreamedUnpackResult | undefined;
      try {
        const out = JSON.parse(line) as Record<string, unknown>;
        result = 'diffId' in out ? streamedResult(out) : undefined;
      } catch (err) {
        this.kill();
        p.reject(err);
        continue;
      }
      if (result && p.job.blob.size > this.counted) p.job.blob.onBytes?.(p.job.blob.size - this.counted);
      p.resolve(result);
      this.stderrBuf = '';
      if (!this.ended) this.onIdle(this);
    }
  }

  private async reap(): Promise<void> {
    this.ended = true;
    this.closeStdin();
    const end = await waitForExit(this.pid);
    this.onGone(this);
    const p = this.settle();
    if (!p) return;
    const signal = p.job.opts.signal;
    if (signal?.aborted) {
      p.reject(signal.reason instanceof Error ? signal.reason : new Error('unpack cancelled'));
      return;
    }
    try {
      if (end instanceof Error) throw end;
      // A worker that ends with status 0 in the middle of a job lost it: not a success.
      if (end.code === 0) throw new Error(`berth-unpack ended in the middle of a layer: ${this.stderrBuf.trim().split('\n').pop() ?? ''}`);
      outcome(end.code, end.signal, '', this.stderrBuf.trim().split('\n').pop() ?? '');
      p.resolve(undefined);
    } catch (err) {
      p.reject(err);
    }
  }
}

/**
 * Layers that fetch many blobs from registries (every pull) share these berth-unpack workers: started on
 * demand (or ahead with warm), each running one job at a time, kept for idleMs after their last job (a
 * worker's start, its exec, libraries and TLS set-up, costs more CPU than a small layer's whole job).
 * How many run at once is the callers' limit (the pull's download slots). A worker whose job fails ends
 * with it; the next job gets a new one. close() ends them all.
 */
export class UnpackWorkers {
  private readonly idle = new Map<string, Worker[]>();
  private readonly all = new Set<Worker>();
  private readonly idleTimers = new Map<Worker, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly limits: UnpackLimits,
    private readonly idleMs = 0,
  ) {}

  private argv(request: Pick<DirectRequest, 'caFile' | 'insecureTls'>): string[] {
    return [
      UNPACK_BINARY,
      '--jobs',
      '--max-bytes',
      String(this.limits.maxBytes),
      '--max-entries',
      String(this.limits.maxEntries),
      ...(request.caFile ? ['--ca-file', request.caFile] : []),
      ...(request.insecureTls ? ['--insecure-tls'] : []),
    ];
  }

  private spawn(argv: string[]): Worker {
    const key = argv.join('\0');
    const w = new Worker(
      argv,
      (idle) => this.park(key, idle),
      (gone) => {
        this.all.delete(gone);
        this.unpark(key, gone);
      },
    );
    this.all.add(w);
    return w;
  }

  /** An idle worker waits for the next job, for idleMs at most (unref'd: it keeps nothing alive). */
  private park(key: string, w: Worker): void {
    if (this.closed) {
      w.close();
      return;
    }
    (this.idle.get(key) ?? this.idle.set(key, []).get(key)!).push(w);
    const timer = setTimeout(() => {
      this.unpark(key, w);
      w.close();
    }, this.idleMs);
    timer.unref();
    this.idleTimers.set(w, timer);
  }

  private unpark(key: string, w: Worker): void {
    clearTimeout(this.idleTimers.get(w));
    this.idleTimers.delete(w);
    const list = this.idle.get(key);
    const i = list?.indexOf(w) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
  }

  /**
   * Starts workers ahead of their jobs (while the caller waits for something else) until n are idle or
   * busy. The spawns run on the thread pool; a job given to a worker still starting waits for it.
   */
  warm(request: Pick<DirectRequest, 'caFile' | 'insecureTls'>, n: number): void {
    if (this.closed) return;
    const argv = this.argv(request);
    const key = argv.join('\0');
    const idle = this.idle.get(key)?.length ?? 0;
    const busy = [...this.all].filter((w) => w.busy).length;
    for (let have = idle + busy; have < n; have++) this.park(key, this.spawn(argv));
  }

  /** One layer: undefined (nothing written) when the URL was not served. */
  run(job: UnpackJob): Promise<StreamedUnpackResult | undefined> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error('berthd is stopping: no more layer downloads'));
        return;
      }
      const argv = this.argv(job.request);
      const key = argv.join('\0');
      const parked = this.idle.get(key)?.at(-1);
      if (parked) this.unpark(key, parked);
      (parked ?? this.spawn(argv)).run({ job, resolve, reject });
    });
  }

  get size(): number {
    return this.all.size;
  }

  close(): void {
    this.closed = true;
    for (const w of this.all) {
      if (w.busy) w.kill();
      else w.close();
    }
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    this.idleTimers.clear();
    this.idle.clear();
  }
}
