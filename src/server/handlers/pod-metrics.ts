// The cAdvisor-named metrics the kubelet serves from the CRI (PodAndContainerStatsFromCRI): their
// descriptors (ListMetricDescriptors), and each ready pod's values built from the same samples as
// ListPodSandboxStats. Names, label keys and units follow containerd's: label keys pod, namespace,
// container, id, image (network metrics add interface, filesystem ones device); CPU time in whole
// seconds, as the CRI's uint64 values carry it and the kubelet exports it unscaled.
import type { Metric } from '../../generated/runtime/v1/Metric';
import type { MetricDescriptor } from '../../generated/runtime/v1/MetricDescriptor';
import type { PodSandboxMetrics } from '../../generated/runtime/v1/PodSandboxMetrics';
import type { PodSandboxStats } from '../../generated/runtime/v1/PodSandboxStats';
import type { ContainerStats } from '../../generated/runtime/v1/ContainerStats';
import type { UInt64Value } from '../../generated/runtime/v1/UInt64Value';

const BASE = ['pod', 'namespace', 'container', 'id', 'image'];

type Kind = 'COUNTER' | 'GAUGE';

interface ContainerSource {
  descriptor: MetricDescriptor;
  kind: Kind;
  /** Values (with the labels after the base ones) from a container's stats. */
  values: (s: ContainerStats) => Array<{ extra: string[]; value: bigint | undefined }>;
}

interface PodSource {
  descriptor: MetricDescriptor;
  kind: Kind;
  values: (s: PodSandboxStats) => Array<{ extra: string[]; value: bigint | undefined }>;
}

const n = (v: UInt64Value | null | undefined): bigint | undefined => (v?.value === undefined || v.value === null ? undefined : BigInt(String(v.value)));
const one = (value: bigint | undefined) => [{ extra: [], value }];
const NS_PER_S = 1_000_000_000n;

const container = (name: string, help: string, kind: Kind, values: ContainerSource['values'], extraKeys: string[] = []): ContainerSource => ({
  descriptor: { name, help, label_keys: [...BASE, ...extraKeys] },
  kind,
  values,
});

const CONTAINER_METRICS: ContainerSource[] = [
  container('container_cpu_usage_seconds_total', 'Cumulative CPU time consumed in seconds.', 'COUNTER', (s) => {
    const ns = n(s.cpu?.usage_core_nano_seconds);
    return one(ns === undefined ? undefined : ns / NS_PER_S);
  }),
  container('container_memory_usage_bytes', 'Current memory usage in bytes, including all memory regardless of when it was accessed.', 'GAUGE', (s) => one(n(s.memory?.usage_bytes))),
  container('container_memory_working_set_bytes', 'Current working set in bytes.', 'GAUGE', (s) => one(n(s.memory?.working_set_bytes))),
  container('container_memory_rss', 'Size of RSS in bytes.', 'GAUGE', (s) => one(n(s.memory?.rss_bytes))),
  container('container_fs_usage_bytes', 'Number of bytes that are consumed by the container on this filesystem.', 'GAUGE', (s) => [
    { extra: [s.writable_layer?.fs_id?.mountpoint ?? ''], value: n(s.writable_layer?.used_bytes) },
  ], ['device']),
];

const interfaces = (s: PodSandboxStats) => s.linux?.network?.interfaces ?? [];
const network = (name: string, help: string, pick: (i: NonNullable<ReturnType<typeof interfaces>>[number]) => UInt64Value | null | undefined): PodSource => ({
  descriptor: { name, help, label_keys: [...BASE, 'interface'] },
  kind: 'COUNTER',
  values: (s) => interfaces(s).map((i) => ({ extra: [i.name ?? ''], value: n(pick(i)) })),
});

const POD_METRICS: PodSource[] = [
  network('container_network_receive_bytes_total', 'Cumulative count of bytes received.', (i) => i.rx_bytes),
  network('container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted.', (i) => i.tx_bytes),
  network('container_network_receive_errors_total', 'Cumulative count of errors encountered while receiving.', (i) => i.rx_errors),
  network('container_network_transmit_errors_total', 'Cumulative count of errors encountered while transmitting.', (i) => i.tx_errors),
  {
    descriptor: { name: 'container_processes', help: 'Number of processes running inside the pod.', label_keys: BASE },
    kind: 'GAUGE',
    values: (s) => one(n(s.linux?.process?.process_count)),
  },
];

/** Every metric berth reports: fixed for berthd's life, as the kubelet reads them once. */
export const METRIC_DESCRIPTORS: MetricDescriptor[] = [...CONTAINER_METRICS, ...POD_METRICS].map((m) => m.descriptor);

function metric(name: string, kind: Kind, timestamp: string, labels: string[], value: bigint): Metric {
  return { name, timestamp, metric_type: kind, label_values: labels, value: { value: value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : String(value) } };
}

/** A pod's metrics from its stats; `imageOf` names a container's image (the `image` label). */
export function podMetrics(stats: PodSandboxStats, imageOf: (containerId: string) => string): PodSandboxMetrics {
  const podId = stats.attributes?.id ?? '';
  const pod = stats.attributes?.metadata?.name ?? '';
  const namespace = stats.attributes?.metadata?.namespace ?? '';
  const podTime = String(stats.linux?.network?.timestamp ?? stats.linux?.cpu?.timestamp ?? '0');
  const podLabels = [pod, namespace, '', podId, ''];
  const metrics: Metric[] = [];
  for (const m of POD_METRICS) {
    for (const v of m.values(stats)) if (v.value !== undefined) metrics.push(metric(m.descriptor.name!, m.kind, podTime, [...podLabels, ...v.extra], v.value));
  }
  const containerMetrics = (stats.linux?.containers ?? []).map((c) => {
    const id = c.attributes?.id ?? '';
    const labels = [pod, namespace, c.attributes?.metadata?.name ?? '', id, imageOf(id)];
    const time = String(c.cpu?.timestamp ?? podTime);
    const out: Metric[] = [];
    for (const m of CONTAINER_METRICS) {
      for (const v of m.values(c)) if (v.value !== undefined) out.push(metric(m.descriptor.name!, m.kind, time, [...labels, ...v.extra], v.value));
    }
    return { container_id: id, metrics: out };
  });
  return { pod_sandbox_id: podId, metrics, container_metrics: containerMetrics };
}
