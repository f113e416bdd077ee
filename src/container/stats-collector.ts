// Usage samples of containers and pods for the stats RPCs. CPU usage in nano cores needs two samples,
// so the previous sample of each cgroup is kept (as containerd and CRI-O do).
import type { SandboxRecord } from '../pod/sandbox';
import { writableLayerUsage } from '../storage/rootfs';
import type { ContainerRecord } from './container';
import { cpuStats, memoryStats, networkStats, pressureStats, processCount, type MemoryStats, type NetworkStats, type PressureByResource } from './stats';

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

const nowNanos = (): bigint => BigInt(Date.now()) * 1_000_000n;

export class StatsCollector {
  private readonly previous = new Map<string, { timestamp: bigint; usage: bigint }>();

  private async cpu(cgroup: string, timestamp: bigint): Promise<CpuSample> {
    const { usageCoreNanoSeconds } = await cpuStats(cgroup);
    const last = this.previous.get(cgroup);
    this.previous.set(cgroup, { timestamp, usage: usageCoreNanoSeconds });
    if (!last || timestamp <= last.timestamp || usageCoreNanoSeconds < last.usage) return { timestamp, usageCoreNanoSeconds };
    const usageNanoCores = ((usageCoreNanoSeconds - last.usage) * 1_000_000_000n) / (timestamp - last.timestamp);
    return { timestamp, usageCoreNanoSeconds, usageNanoCores };
  }

  async container(record: ContainerRecord, writableRoot: string): Promise<ContainerUsage> {
    const timestamp = nowNanos();
    const [cpu, memory, pressure, layer] = await Promise.all([
      this.cpu(record.cgroup, timestamp),
      memoryStats(record.cgroup),
      pressureStats(record.cgroup),
      writableLayerUsage(`${record.containerDir}/fs/upper`),
    ]);
    return { timestamp, cpu, memory, pressure, writableLayer: { mountpoint: writableRoot, ...layer } };
  }

  async pod(record: SandboxRecord): Promise<PodUsage> {
    const timestamp = nowNanos();
    const [cpu, memory, pressure, network, processes] = await Promise.all([
      this.cpu(record.cgroup, timestamp),
      memoryStats(record.cgroup),
      pressureStats(record.cgroup),
      record.pins.net ? networkStats(record.pins.net, record.cgroup) : Promise.resolve([]),
      processCount(record.cgroup),
    ]);
    return { timestamp, cpu, memory, pressure, network, processes };
  }

  /** Drops the samples of cgroups that no longer exist. */
  forget(cgroup: string): void {
    this.previous.delete(cgroup);
  }
}
