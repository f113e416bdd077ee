// The unpack thread: layers are unpacked here, off berthd's main thread, so that gunzip callbacks, the
// diffID hash, tar parsing and file writes run beside the downloads, the registry traffic and the CRI
// calls instead of taking turns with them. Messages: see unpack-pool.ts.
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { errorCodeOf, messageOf } from '../../errors';
import { unpackLayer, type UnpackLimits } from './unpack-layer';

export interface UnpackJob {
  id: number;
  blobPath: string;
  mediaType: string;
  target: string;
  limits: UnpackLimits;
}

export type WorkerMessage =
  | { id: number; progress: true }
  | { id: number; result: { diffId: string; uncompressedSize: number; entries: number } }
  | { id: number; error: { code: string; message: string } };

const PROGRESS_EVERY_MS = 200;
const running = new Map<number, AbortController>();

function post(message: WorkerMessage): void {
  parentPort?.postMessage(message);
}

async function run(job: UnpackJob): Promise<void> {
  const controller = new AbortController();
  running.set(job.id, controller);
  let last = 0;
  try {
    const source = fs.createReadStream(job.blobPath, { highWaterMark: 256 * 1024 });
    const result = await unpackLayer(source, job.mediaType, job.target, {
      limits: job.limits,
      signal: controller.signal,
      onProgress: () => {
        const now = Date.now();
        if (now - last < PROGRESS_EVERY_MS) return;
        last = now;
        post({ id: job.id, progress: true });
      },
    });
    post({ id: job.id, result });
  } catch (err) {
    post({ id: job.id, error: { code: errorCodeOf(err), message: messageOf(err) } });
  } finally {
    running.delete(job.id);
  }
}

parentPort?.on('message', (msg: UnpackJob | { cancel: number }) => {
  if ('cancel' in msg) running.get(msg.cancel)?.abort(new Error('unpack cancelled'));
  else void run(msg);
});
