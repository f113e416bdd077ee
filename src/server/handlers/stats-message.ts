// CRI stats messages from berth's usage samples.
import type { ContainerStats } from '../../generated/runtime/v1/ContainerStats';
import type { PodSandboxStats } from '../../generated/runtime/v1/PodSandboxStats';
import type { ContainerRecord } from '../../container/container';
import type { ContainerUsage, CpuSample, PodUsage } from '../../container/stats-collector';
import type { MemoryStats, Pressure, PressureByResource, PsiLine } from '../../container/stats';
import type { SandboxRecord } from '../../pod/sandbox';

/** A number where it is exact (protobufjs encodes it without parsing a string into a Long), else a string. */
const u64 = (v: bigint | number | undefined) => (v === undefined ? null : { value: v <= Number.MAX_SAFE_INTEGER ? Number(v) : String(v) });

const psiData = (l: PsiLine | undefined) => (l ? { Total: String(l.total), Avg10: l.avg10, Avg60: l.avg60, Avg300: l.avg300 } : null);
const psiMessage = (p: Pressure | undefined) => (p ? { Some: psiData(p.some), Full: psiData(p.full) } : null);

const cpuMessage = (c: CpuSample, p: PressureByResource) => ({
  timestamp: String(c.timestamp),
  usage_core_nano_seconds: u64(c.usageCoreNanoSeconds),
  usage_nano_cores: u64(c.usageNanoCores ?? 0n),
  psi: psiMessage(p.cpu),
});

/** I/O usage is PSI only in the CRI; absent where the host has none (cgroup v1). */
const ioMessage = (timestamp: bigint, p: PressureByResource) => (p.io ? { timestamp: String(timestamp), psi: psiMessage(p.io) } : null);

const memoryMessage = (timestamp: bigint, m: MemoryStats, p: PressureByResource) => ({
  timestamp: String(timestamp),
  working_set_bytes: u64(m.workingSetBytes),
  available_bytes: u64(m.availableBytes),
  usage_bytes: u64(m.usageBytes),
  rss_bytes: u64(m.rssBytes),
  page_faults: u64(m.pageFaults),
  major_page_faults: u64(m.majorPageFaults),
  psi: psiMessage(p.memory),
});

export function containerStatsMessage(r: ContainerRecord, u: ContainerUsage): ContainerStats {
  return {
    attributes: { id: r.id, metadata: { name: r.spec.name, attempt: r.spec.attempt }, labels: r.spec.labels, annotations: r.spec.annotations },
    cpu: cpuMessage(u.cpu, u.pressure),
    memory: memoryMessage(u.timestamp, u.memory, u.pressure),
    io: ioMessage(u.timestamp, u.pressure),
    swap:
      u.memory.swapUsageBytes === undefined
        ? null
        : { timestamp: String(u.timestamp), swap_usage_bytes: u64(u.memory.swapUsageBytes), swap_available_bytes: u64(u.memory.swapAvailableBytes) },
    writable_layer: {
      timestamp: String(u.timestamp),
      fs_id: { mountpoint: u.writableLayer.mountpoint },
      used_bytes: u64(u.writableLayer.bytes),
      inodes_used: u64(u.writableLayer.inodes),
    },
  };
}

export function podStatsMessage(r: SandboxRecord, u: PodUsage, containers: ContainerStats[]): PodSandboxStats {
  const interfaces = u.network.map((n) => ({ name: n.name, rx_bytes: u64(n.rxBytes), rx_errors: u64(n.rxErrors), tx_bytes: u64(n.txBytes), tx_errors: u64(n.txErrors) }));
  return {
    attributes: { id: r.id, metadata: { name: r.spec.name, uid: r.spec.uid, namespace: r.spec.namespace, attempt: r.spec.attempt }, labels: r.spec.labels, annotations: r.spec.annotations },
    linux: {
      cpu: cpuMessage(u.cpu, u.pressure),
      memory: memoryMessage(u.timestamp, u.memory, u.pressure),
      io: ioMessage(u.timestamp, u.pressure),
      network: { timestamp: String(u.timestamp), default_interface: interfaces.find((i) => i.name === 'eth0') ?? interfaces[0] ?? null, interfaces },
      process: { timestamp: String(u.timestamp), process_count: u64(u.processes) },
      containers,
    },
  };
}
