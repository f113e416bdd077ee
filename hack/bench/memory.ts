// Memory of a runtime while a workload runs: its daemon (the process listening on the CRI socket) and its
// per-container processes, sampled from /proc every ~100 ms by a worker thread, so that reading /proc never
// stalls the event loop that times the RPCs.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  readCmdline,
  readMemory,
  readProcTable,
  runtimeProcesses,
  type ProcInfo,
  type ProcMemory,
} from './proc';

/** The command-name patterns of each runtime's per-container processes, by CRI `runtime_name`. */
export const RUNTIME_PROCESS_PATTERNS: Record<string, string> = {
  berth: '^berth-(monitor|init)$',
  containerd: '^containerd-shim',
  'cri-o': '^conmon$',
};

/** Matches nothing: a runtime of unknown name counts only its daemon's descendants. */
export const NO_PATTERN = '(?!)';

export function processPatternFor(runtimeName: string | undefined): string {
  return RUNTIME_PROCESS_PATTERNS[(runtimeName ?? '').toLowerCase()] ?? NO_PATTERN;
}

export interface MemoryTarget {
  daemonPid?: number;
  socketPaths: string[];
  /** Source of the RegExp on the command name of per-container processes. */
  pattern: string;
}

export interface MemoryPeak {
  samples: number;
  daemon?: {
    pid: number;
    /** VmHWM at the last sample: the daemon's peak RSS over its whole life so far. */
    hwmKiB: number;
    /** The largest VmRSS sampled. */
    rssMaxKiB: number;
  };
  containers: {
    /** The most per-container processes seen at once. */
    processesMax: number;
    /** The largest sum of their VmRSS in one sample. */
    sumRssMaxKiB: number;
    /** The largest VmRSS, and VmHWM, of any one of them. */
    perProcessRssMaxKiB: number;
    perProcessHwmMaxKiB: number;
  };
}

export function emptyPeak(): MemoryPeak {
  return { samples: 0, containers: { processesMax: 0, sumRssMaxKiB: 0, perProcessRssMaxKiB: 0, perProcessHwmMaxKiB: 0 } };
}

export interface MemorySample {
  daemon?: { pid: number } & ProcMemory;
  processes: ProcMemory[];
}

/** Folds one sample into a running peak (in place) and returns it. */
export function accumulate(peak: MemoryPeak, s: MemorySample): MemoryPeak {
  peak.samples++;
  if (s.daemon) {
    peak.daemon = {
      pid: s.daemon.pid,
      hwmKiB: Math.max(peak.daemon?.hwmKiB ?? 0, s.daemon.hwmKiB),
      rssMaxKiB: Math.max(peak.daemon?.rssMaxKiB ?? 0, s.daemon.rssKiB),
    };
  }
  const c = peak.containers;
  c.processesMax = Math.max(c.processesMax, s.processes.length);
  c.sumRssMaxKiB = Math.max(c.sumRssMaxKiB, s.processes.reduce((sum, p) => sum + p.rssKiB, 0));
  for (const p of s.processes) {
    c.perProcessRssMaxKiB = Math.max(c.perProcessRssMaxKiB, p.rssKiB);
    c.perProcessHwmMaxKiB = Math.max(c.perProcessHwmMaxKiB, p.hwmKiB);
  }
  return peak;
}

/** Merges the peaks of several steps. */
export function mergePeaks(peaks: readonly MemoryPeak[]): MemoryPeak {
  const m = emptyPeak();
  for (const p of peaks) {
    m.samples += p.samples;
    if (p.daemon) {
      m.daemon = {
        pid: p.daemon.pid,
        hwmKiB: Math.max(m.daemon?.hwmKiB ?? 0, p.daemon.hwmKiB),
        rssMaxKiB: Math.max(m.daemon?.rssMaxKiB ?? 0, p.daemon.rssMaxKiB),
      };
    }
    for (const k of Object.keys(m.containers) as (keyof MemoryPeak['containers'])[]) {
      m.containers[k] = Math.max(m.containers[k], p.containers[k]);
    }
  }
  return m;
}

/** Takes one sample from /proc (synchronously: meant for the worker thread). */
export function sampleNow(target: MemoryTarget, procRoot = '/proc'): MemorySample {
  const table: ProcInfo[] = readProcTable(procRoot);
  const rule = { pattern: new RegExp(target.pattern), socketPaths: target.socketPaths };
  const pids = runtimeProcesses(table, target.daemonPid, rule, (pid) => readCmdline(pid, procRoot));
  const processes: ProcMemory[] = [];
  for (const pid of pids) {
    const m = readMemory(pid, procRoot);
    if (m) processes.push(m);
  }
  const sample: MemorySample = { processes };
  if (target.daemonPid !== undefined) {
    const m = readMemory(target.daemonPid, procRoot);
    if (m) sample.daemon = { pid: target.daemonPid, ...m };
  }
  return sample;
}

// ---------------------------------------------------------------------------------------------------------
// The main thread's side of the sampler.

export type SamplerRequest = { type: 'start'; target: MemoryTarget; intervalMs: number } | { type: 'stop' };
export type SamplerReply = { type: 'peak'; peak: MemoryPeak } | { type: 'error'; message: string };

export interface Sampler {
  start(target: MemoryTarget): void;
  stop(): Promise<MemoryPeak>;
  close(): Promise<void>;
}

export class WorkerSampler implements Sampler {
  private readonly worker: Worker;
  private waiting: { resolve: (p: MemoryPeak) => void; reject: (e: Error) => void } | undefined;
  private dead: Error | undefined;

  constructor(private readonly intervalMs: number) {
    this.worker = new Worker(path.join(__dirname, 'sampler-worker.js'));
    this.worker.on('message', (reply: SamplerReply) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (!w) return;
      if (reply.type === 'peak') w.resolve(reply.peak);
      else w.reject(new Error(`memory sampler: ${reply.message}`));
    });
    this.worker.on('error', (err) => {
      this.dead = err;
      this.waiting?.reject(err);
      this.waiting = undefined;
    });
    this.worker.on('exit', (code) => {
      this.dead ??= new Error(`memory sampler exited with code ${code}`);
      this.waiting?.reject(this.dead);
      this.waiting = undefined;
    });
  }

  start(target: MemoryTarget): void {
    if (this.dead) return;
    this.worker.postMessage({ type: 'start', target, intervalMs: this.intervalMs } satisfies SamplerRequest);
  }

  stop(): Promise<MemoryPeak> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage({ type: 'stop' } satisfies SamplerRequest);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
