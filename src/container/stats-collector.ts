// Usage samples of containers and pods for the stats RPCs. Every file of a batch (all the cgroups and network
// namespaces a call asks about) is read in one thread-pool job and every writable layer walked in another,
// so that ListContainerStats over hundreds of containers costs the event loop a few callbacks and the
// parsing, never a flood of small reads that other calls queue behind. CPU usage in nano cores needs two
// samples, so the previous sample of each cgroup is kept (as containerd and CRI-O do).
import { diskUsage, readFiles } from '../native';
import type { SandboxRecord } from '../pod/sandbox';
import type { ContainerRecord } from './container';
import { NET_DEV_IN_NETNS, parseCgroupUsage, parseNetDev, STAT_FILES, statFiles, type MemoryStats, type NetworkStats, type PressureByResource } from './stats';

export interface CpuSample {
  timestamp: bigint;
  usageCoreNanoSeconds: bigint;
  usageNanoCores?: bigint;
}

export interface ContainerUsage {
  timestamp: bigint;
  cpu: CpuSample;
  memory: MemoryStats;
  pressure: PressureByResource;
  writableLayer: { mountpoint: string; bytes: number; inodes: number };
}

export interface PodUsage {
  timestamp: bigint;
  cpu: CpuSample;
  memory: MemoryStats;
  pressure: PressureByResource;
  network: NetworkStats[];
  processes: number;
}

/** A cgroup file is a few kB at most (memory.stat ~1.5 kB); /proc/net/dev grows with interfaces. */
const MAX_FILE_BYTES = 256 * 1024;
/** A previous sample unused this long belongs to a cgroup that is gone: forgotten. */
const SAMPLE_TTL_NS = 10n * 60n * 1_000_000_000n;

const nowNanos = (): bigint => BigInt(Date.now()) * 1_000_000n;

export class StatsCollector {
  private readonly previous = new Map<string, { timestamp: bigint; usage: bigint }>();
  /** The files of each cgroup sampled recently (working them out anew each time costs more than reading them). */
  private readonly files = new Map<string, string[]>();

  private filesOf(cgroup: string): string[] {
    let files = this.files.get(cgroup);
    if (!files) this.files.set(cgroup, (files = statFiles(cgroup)));
    return files;
  }

  private cpu(cgroup: string, timestamp: bigint, usageCoreNanoSeconds: bigint): CpuSample {
    const last = this.previous.get(cgroup);
    this.previous.set(cgroup, { timestamp, usage: usageCoreNanoSeconds });
    if (!last || timestamp <= last.timestamp || usageCoreNanoSeconds < last.usage) return { timestamp, usageCoreNanoSeconds };
    const usageNanoCores = ((usageCoreNanoSeconds - last.usage) * 1_000_000_000n) / (timestamp - last.timestamp);
    return { timestamp, usageCoreNanoSeconds, usageNanoCores };
  }

  private prune(now: bigint): void {
    for (const [cgroup, s] of this.previous) {
      if (now - s.timestamp <= SAMPLE_TTL_NS) continue;
      this.previous.delete(cgroup);
      this.files.delete(cgroup);
    }
  }

  /**
   * Reads the usage of containers and pods in one batch. What the files say is parsed when asked for, item
   * by item, so that a caller can spread the parsing of hundreds of items over several turns of the loop.
   */
  async sample(containers: readonly ContainerRecord[], pods: readonly SandboxRecord[], writableRoot: string): Promise<StatsBatch> {
    const cgroups = [...containers.map((c) => c.cgroup), ...pods.map((p) => p.cgroup)];
    const paths = cgroups.flatMap((c) => this.filesOf(c));
    const netns: (string | null)[] = paths.map(() => null);
    for (const p of pods) {
      paths.push(p.pins.net ? NET_DEV_IN_NETNS : '');
      netns.push(p.pins.net ?? null);
    }
    const [texts, layers] = await Promise.all([readFiles(paths, netns, MAX_FILE_BYTES), diskUsage(containers.map((c) => `${c.containerDir}/fs/upper`))]);
    const timestamp = nowNanos();
    this.prune(timestamp);
    const usageOf = (i: number) => parseCgroupUsage(texts.slice(i * STAT_FILES, (i + 1) * STAT_FILES));
    const netBase = cgroups.length * STAT_FILES;
    return {
      container: (i) => {
        const c = containers[i];
        const u = usageOf(i);
        const layer = layers[i] ?? { bytes: 0, inodes: 0 };
        return { timestamp, cpu: this.cpu(c.cgroup, timestamp, u.cpu.usageCoreNanoSeconds), memory: u.memory, pressure: u.pressure, writableLayer: { mountpoint: writableRoot, ...layer } };
      },
      pod: (k) => {
        const p = pods[k];
        const u = usageOf(containers.length + k);
        return { timestamp, cpu: this.cpu(p.cgroup, timestamp, u.cpu.usageCoreNanoSeconds), memory: u.memory, pressure: u.pressure, network: parseNetDev(texts[netBase + k]), processes: u.processes };
      },
    };
  }
}

/** One batch's usage: item i of the containers, item k of the pods, each parsed once when asked for. */
export interface StatsBatch {
  container(i: number): ContainerUsage;
  pod(k: number): PodUsage;
}
