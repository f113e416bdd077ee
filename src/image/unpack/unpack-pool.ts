// Unpacking layers on worker threads (unpack-worker.ts), one job per layer, as many threads as layers
// are unpacked at once (up to the pool's size). When the compiled worker is not there (code run from
// its TypeScript sources), layers are unpacked on the calling thread instead.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BerthError, type ErrorCode } from '../../errors';
import { unpackLayer, type UnpackOptions, type UnpackResult } from './unpack-layer';
import type { UnpackJob, WorkerMessage } from './unpack-worker';

const WORKER_FILE = path.join(__dirname, 'unpack-worker.js');

interface Pending {
  resolve: (r: UnpackResult) => void;
  reject: (e: Error) => void;
  onProgress?: () => void;
  worker: PooledWorker;
}

interface PooledWorker {
  worker: Worker;
  jobs: number;
}

export class UnpackPool {
  private readonly workers: PooledWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly size: number) {}

  async unpack(blobPath: string, mediaType: string, target: string, opts: UnpackOptions): Promise<UnpackResult> {
    if (!fs.existsSync(WORKER_FILE)) {
      return unpackLayer(fs.createReadStream(blobPath, { highWaterMark: 256 * 1024 }), mediaType, target, opts);
    }
    const slot = this.idlest();
    const job: UnpackJob = { id: this.nextId++, blobPath, mediaType, target, limits: opts.limits };
    const done = new Promise<UnpackResult>((resolve, reject) => {
      this.pending.set(job.id, { resolve, reject, onProgress: opts.onProgress ? () => opts.onProgress?.(0) : undefined, worker: slot });
    });
    const cancel = () => slot.worker.postMessage({ cancel: job.id });
    opts.signal?.addEventListener('abort', cancel, { once: true });
    // A thread with work keeps the process alive; an idle one does not.
    if (slot.jobs++ === 0) slot.worker.ref();
    slot.worker.postMessage(job);
    try {
      return await done;
    } finally {
      if (--slot.jobs === 0) slot.worker.unref();
      opts.signal?.removeEventListener('abort', cancel);
    }
  }

  /** The worker with the fewest jobs; a new one while the pool is not full. */
  private idlest(): PooledWorker {
    const free = this.workers.find((w) => w.jobs === 0);
    if (free) return free;
    if (this.workers.length < this.size) return this.start();
    return this.workers.reduce((a, b) => (b.jobs < a.jobs ? b : a));
  }

  private start(): PooledWorker {
    // A small young generation: the thread churns through short-lived chunks, and every MiB of
    // semi-space is a MiB of berthd's RSS.
    const slot: PooledWorker = { worker: new Worker(WORKER_FILE, { resourceLimits: { maxYoungGenerationSizeMb: 2 } }), jobs: 0 };
    slot.worker.on('message', (msg: WorkerMessage) => this.onMessage(msg));
    slot.worker.on('error', (err) => this.failAll(slot, err));
    slot.worker.on('exit', (code) => this.failAll(slot, new Error(`an unpack thread exited with code ${code}`)));
    // After the listeners (attaching one refs the worker again): an idle thread never keeps berthd,
    // or a one-shot command such as `images import`, from exiting.
    slot.worker.unref();
    this.workers.push(slot);
    return slot;
  }

  private onMessage(msg: WorkerMessage): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if ('progress' in msg) return p.onProgress?.();
    this.pending.delete(msg.id);
    if ('result' in msg) p.resolve(msg.result);
    else p.reject(new BerthError(msg.error.code as ErrorCode, msg.error.message));
  }

  /** A worker that died takes its jobs with it: they fail, and it leaves the pool. */
  private failAll(slot: PooledWorker, err: Error): void {
    const i = this.workers.indexOf(slot);
    if (i >= 0) this.workers.splice(i, 1);
    for (const [id, p] of this.pending) {
      if (p.worker !== slot) continue;
      this.pending.delete(id);
      p.reject(err);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    this.workers.length = 0;
  }
}
