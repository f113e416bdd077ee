// The process behind a streaming URL, and its RSS over one transfer, for the exec-stream workload.
//
// A workload is not told which daemon it runs against, but the URL that Exec returns names the streaming
// server's TCP port, and the process listening there is the one whose memory a transfer moves (berthd's
// streaming server is berthd; containerd's CRI plugin serves it from containerd). The framework samples the
// daemon every --sample-ms and reports the largest VmRSS and the lifetime VmHWM of a whole step; this adds,
// per transfer, the RSS just before the Exec, its peak during the transfer (sampled every 20 ms) and the RSS
// once the client has read the last byte, so that the growth a transfer causes can be told apart from what
// the daemon held already.
import fs from 'node:fs';
import { holdersOf, pickServer, readMemory } from './proc';

/** Parses /proc/net/tcp or tcp6: the inodes of sockets listening (state 0A) on `port`. */
export function listeningTcpInodes(text: string, port: number): number[] {
  const inodes: number[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0])) continue;
    const localPort = parseInt(f[1].split(':')[1] ?? '', 16);
    if (localPort === port && f[3] === '0A') inodes.push(Number(f[9]));
  }
  return inodes;
}

export type ListenerLookup = { pid: number; comm: string } | { pid: undefined; reason: string };

/** The process listening on TCP `port` in this network namespace (root: it reads other processes' fd/). */
export function findTcpListener(port: number, procRoot = '/proc'): ListenerLookup {
  const inodes = new Set<number>();
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(`${procRoot}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const inode of listeningTcpInodes(text, port)) inodes.add(inode);
  }
  if (!inodes.size) return { pid: undefined, reason: `nothing listens on TCP port ${port} in this network namespace` };
  const holders = holdersOf(inodes, procRoot);
  const pid = pickServer(holders);
  if (pid === undefined) return { pid: undefined, reason: `no process holds the socket listening on port ${port}` };
  return { pid, comm: holders.find((h) => h.pid === pid)?.comm ?? '?' };
}

export interface TransferMemory {
  /** VmRSS just before the transfer, in KiB. */
  beforeKiB: number;
  /** The largest VmRSS sampled during it. */
  peakKiB: number;
  /** VmRSS right after the client read the last byte. */
  afterKiB: number;
  /** VmHWM after it (the daemon's lifetime peak). */
  hwmKiB: number;
  samples: number;
}

/** Samples one process's VmRSS every `intervalMs` (on this thread: a read of /proc/PID/status, ~50 µs). */
export class RssWatch {
  private timer: NodeJS.Timeout | undefined;
  private before = 0;
  private peak = 0;
  private samples = 0;

  constructor(
    readonly pid: number,
    private readonly intervalMs = 20,
  ) {}

  start(): void {
    this.before = this.sample();
    this.peak = this.before;
    this.samples = 1;
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, this.sample());
      this.samples++;
    }, this.intervalMs);
  }

  stop(): TransferMemory {
    clearInterval(this.timer);
    this.timer = undefined;
    const m = readMemory(this.pid);
    const after = m?.rssKiB ?? 0;
    this.peak = Math.max(this.peak, after);
    return { beforeKiB: this.before, peakKiB: this.peak, afterKiB: after, hwmKiB: m?.hwmKiB ?? 0, samples: this.samples + 1 };
  }

  private sample(): number {
    return readMemory(this.pid)?.rssKiB ?? 0;
  }
}
