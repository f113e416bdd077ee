// The memory sampler's worker thread: on `start`, samples /proc at once and then every intervalMs; on `stop`,
// samples once more and replies with the peak.
import { parentPort } from 'node:worker_threads';
import { accumulate, emptyPeak, sampleNow, type MemoryPeak, type MemoryTarget, type SamplerReply, type SamplerRequest } from './memory';

const port = parentPort;
if (!port) throw new Error('sampler-worker.js runs only as a worker thread');

let timer: NodeJS.Timeout | undefined;
let target: MemoryTarget | undefined;
let peak: MemoryPeak = emptyPeak();
let failure: string | undefined;

function tick(): void {
  if (!target || failure) return;
  try {
    accumulate(peak, sampleNow(target));
  } catch (err) {
    failure = (err as Error).message;
  }
}

port.on('message', (msg: SamplerRequest) => {
  if (msg.type === 'start') {
    clearInterval(timer);
    target = msg.target;
    peak = emptyPeak();
    failure = undefined;
    tick();
    timer = setInterval(tick, msg.intervalMs);
  } else {
    clearInterval(timer);
    timer = undefined;
    tick();
    target = undefined;
    const reply: SamplerReply = failure ? { type: 'error', message: failure } : { type: 'peak', peak };
    port.postMessage(reply);
  }
});
