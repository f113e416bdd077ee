// Attaching pods to the configured CNI network and detaching them, with the pod CIDR the kubelet sets.
import fs from 'node:fs/promises';
import path from 'node:path';
import { removeTempFiles } from '../state/atomic-file';
import type { BerthConfig } from '../config/schema';
import { FailedPreconditionError } from '../errors';
import { NetworkConfigSource, type CniLookup } from './cni-config';
import type { PhaseTimer } from '../util/phase-timer';
import { CniNetwork, type CapabilityArgs, type CniRunOptions, type PortMapping } from './cni-network';

export const POD_IFNAME = 'eth0';

export interface PodAttachment {
  podId: string;
  netns: string;
  name: string;
  namespace: string;
  uid: string;
  portMappings: PortMapping[];
  dns?: CapabilityArgs['dns'];
  bandwidth?: { ingressRate?: number; egressRate?: number };
}

/** The burst the bandwidth plugin is given, as containerd and CRI-O give it: effectively unlimited. */
const BANDWIDTH_BURST = 2 ** 32 - 1;

export interface Attached {
  network: string;
  ips: string[];
}

export class NetworkManager {
  private podCidr = '';
  private readonly opts: CniRunOptions;
  private readonly source: NetworkConfigSource;

  constructor(config: BerthConfig['network'], root: string) {
    this.opts = { pluginDirs: config.plugin_dirs, cacheDir: path.join(root, 'cni'), timeoutMs: config.plugin_timeout_seconds * 1000 };
    this.source = new NetworkConfigSource(config.conf_dir, config.network_name);
  }

  /** The network config in force (for the NetworkReady condition). */
  networkConfig(): Promise<CniLookup> {
    return this.source.lookup();
  }

  close(): void {
    this.source.close();
  }

  /** UpdateRuntimeConfig: the node's pod CIDR, offered to IPAM plugins as the ipRanges capability. */
  setPodCidr(cidr: string): void {
    this.podCidr = cidr;
  }

  get podCidrValue(): string {
    return this.podCidr;
  }

  private attachment(pod: PodAttachment, capabilityArgs: CapabilityArgs) {
    return {
      containerId: pod.podId,
      netns: pod.netns,
      ifname: POD_IFNAME,
      args: {
        K8S_POD_NAMESPACE: pod.namespace,
        K8S_POD_NAME: pod.name,
        K8S_POD_INFRA_CONTAINER_ID: pod.podId,
        K8S_POD_UID: pod.uid,
      },
      capabilityArgs,
    };
  }

  /** CNI ADD of the pod; `timer`, if given, gets the plugins' and the cache write's times. */
  async attach(pod: PodAttachment, timer?: PhaseTimer): Promise<Attached> {
    const lookup = await this.source.lookup();
    if (!lookup.ready) throw new FailedPreconditionError(`network not ready: ${lookup.message}`);
    const caps: CapabilityArgs = {
      portMappings: pod.portMappings,
      ...(pod.dns ? { dns: pod.dns } : {}),
      ...(pod.bandwidth
        ? {
            bandwidth: {
              ...(pod.bandwidth.ingressRate ? { ingressRate: pod.bandwidth.ingressRate, ingressBurst: BANDWIDTH_BURST } : {}),
              ...(pod.bandwidth.egressRate ? { egressRate: pod.bandwidth.egressRate, egressBurst: BANDWIDTH_BURST } : {}),
            },
          }
        : {}),
      ...(this.podCidr ? { ipRanges: [[{ subnet: this.podCidr }]] } : {}),
    };
    const network = new CniNetwork(lookup.network, this.opts);
    const result = await network.add(this.attachment(pod, caps), timer);
    const ips = (result.ips ?? []).map((ip) => ip.address.split('/')[0]);
    return { network: lookup.network.name, ips };
  }

  /** The CNI result of the pod's ADD, from the cache (for verbose status). */
  async cachedResult(networkName: string, podId: string): Promise<unknown> {
    const network = await CniNetwork.fromCache(networkName, { containerId: podId, ifname: POD_IFNAME }, this.opts);
    return (await network?.cached({ containerId: podId, ifname: POD_IFNAME }))?.result;
  }

  /**
   * DEL, always (CNI requires plugins to tolerate DEL of what they do not know): with the network the
   * ADD used when its result is cached (under `networkName`, or found by the pod id when the name is
   * not known, as after a crash mid-ADD), else with the network configured now. Nothing cached and no
   * network configured means nothing can have been attached.
   */
  async detach(networkName: string | undefined, pod: PodAttachment): Promise<void> {
    const name = networkName ?? (await this.cachedNetworkOf(pod.podId));
    const att = this.attachment(pod, { portMappings: pod.portMappings });
    const cached = name ? await CniNetwork.fromCache(name, { containerId: pod.podId, ifname: POD_IFNAME }, this.opts) : undefined;
    if (cached) return cached.del(att);
    const lookup = await this.source.lookup();
    if (!lookup.ready) return;
    await new CniNetwork(lookup.network, this.opts).del(att);
  }

  /** The network name of a cached result for the pod (`<network>-<id>-eth0`), if there is one. */
  private async cachedNetworkOf(podId: string): Promise<string | undefined> {
    const suffix = `-${podId}-${POD_IFNAME}`;
    const names = await fs.readdir(path.join(this.opts.cacheDir, 'results')).catch(() => [] as string[]);
    const file = names.find((n) => n.endsWith(suffix) && !n.startsWith('.'));
    return file?.slice(0, -suffix.length);
  }

  /**
   * Pod ids with a cached CNI result (for the orphan sweep at start-up); the temp files of cache writes
   * a crash cut short are removed first.
   */
  async cachedPodIds(): Promise<string[]> {
    await removeTempFiles(path.join(this.opts.cacheDir, 'results'));
    const names = await fs.readdir(path.join(this.opts.cacheDir, 'results')).catch(() => [] as string[]);
    const ids = new Set<string>();
    for (const n of names) {
      const m = new RegExp(`-([a-f0-9]{64})-${POD_IFNAME}$`).exec(n);
      if (m && !n.startsWith('.')) ids.add(m[1]);
    }
    return [...ids];
  }
}
