// Attaching a pod to a CNI network: ADD runs the plugin chain in order, each given the previous
// result; DEL runs it in reverse with the cached result; CHECK verifies. The result of every ADD is
// cached on disk (what DEL and CHECK need, across berthd restarts), in the layout libcni uses.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeJsonAtomic } from '../state/atomic-file';
import { failpoint } from '../state/failpoints';
import { parseNetworkConfig, type CniNetworkConfig } from './cni-config';
import { execPlugin, type CniCommand } from './cni-exec';
import { Semaphore } from '../util/mutex';
import type { PhaseTimer } from '../util/phase-timer';

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

/** Runtime values offered to plugins that declare the matching capability. */
export interface CapabilityArgs {
  portMappings?: PortMapping[];
  bandwidth?: { ingressRate?: number; ingressBurst?: number; egressRate?: number; egressBurst?: number };
  dns?: { servers?: string[]; searches?: string[]; options?: string[] };
  ipRanges?: Array<Array<{ subnet: string }>>;
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, ...). IgnoreUnknown=1 is always added first. */
  args: Record<string, string>;
  capabilityArgs: CapabilityArgs;
}

export interface CniIp {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: CniIp[];
  routes?: unknown[];
  dns?: unknown;
}

interface CacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  networkName: string;
  ifName: string;
  netns: string;
  cniArgs: Array<[string, string]>;
  capabilityArgs: CapabilityArgs;
  config: Record<string, unknown>;
  result: CniResult;
}

export interface CniRunOptions {
  pluginDirs: readonly string[];
  cacheDir: string;
  timeoutMs: number;
}

function cniArgs(args: Record<string, string>): string {
  return ['IgnoreUnknown=1', ...Object.entries(args).map(([k, v]) => `${k}=${v}`)].join(';');
}

function runtimeConfigFor(plugin: Record<string, unknown>, caps: CapabilityArgs): Record<string, unknown> | undefined {
  const declared = (plugin.capabilities ?? {}) as Record<string, boolean>;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(caps)) {
    if (declared[name] && value !== undefined) out[name] = value;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Plugin chains (ADD, DEL, CHECK) running at once, across pods and networks. A mass stop (a node drain,
 * `crictl rmp -fa` of hundreds of pods) would otherwise start hundreds of plugin processes together:
 * they queue on the xtables lock and the CPU, nothing finishes sooner, and berthd's own calls stop being
 * answered. A pod's chain, once started, runs to its end (its rollback included) on its slot.
 */
export const CNI_CHAINS_AT_ONCE = Math.max(4, 2 * os.availableParallelism());
const chains = new Semaphore(CNI_CHAINS_AT_ONCE);

export class CniNetwork {
  /**
   * The network an earlier ADD used, rebuilt from its cached configuration: DEL must run the plugins
   * that ADD ran, even after the conf dir changed. Undefined when nothing is cached.
   */
  static async fromCache(networkName: string, att: Pick<Attachment, 'containerId' | 'ifname'>, opts: CniRunOptions): Promise<CniNetwork | undefined> {
    const file = path.join(opts.cacheDir, 'results', `${networkName}-${att.containerId}-${att.ifname}`);
    let entry: CacheEntry;
    try {
      entry = JSON.parse(await fs.readFile(file, 'utf8')) as CacheEntry;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return new CniNetwork(parseNetworkConfig(file, JSON.stringify(entry.config)), opts);
  }

  constructor(
    readonly config: CniNetworkConfig,
    private readonly opts: CniRunOptions,
  ) {}

  private cacheFile(att: Pick<Attachment, 'containerId' | 'ifname'>): string {
    return path.join(this.opts.cacheDir, 'results', `${this.config.name}-${att.containerId}-${att.ifname}`);
  }

  private pluginConfig(plugin: Record<string, unknown>, att: Attachment, prevResult?: CniResult): Record<string, unknown> {
    const conf: Record<string, unknown> = { ...plugin, cniVersion: this.config.cniVersion, name: this.config.name };
    const runtimeConfig = runtimeConfigFor(plugin, att.capabilityArgs);
    if (runtimeConfig) conf.runtimeConfig = runtimeConfig;
    if (prevResult) conf.prevResult = prevResult;
    return conf;
  }

  private call(command: CniCommand, plugin: Record<string, unknown> & { type: string }, att: Attachment, prev?: CniResult) {
    return execPlugin(plugin.type, {
      command,
      containerId: att.containerId,
      netns: att.netns,
      ifname: att.ifname,
      args: cniArgs(att.args),
      pluginDirs: this.opts.pluginDirs,
      config: this.pluginConfig(plugin, att, prev),
      timeoutMs: this.opts.timeoutMs,
    });
  }

  /**
   * ADD through the whole chain. On failure the chain is deleted again, so nothing is left half-attached.
   * `timer`, if given, gets each plugin's time (`cni.<type>`) and the cache write's (`cni.cache`).
   */
  async add(att: Attachment, timer?: PhaseTimer): Promise<CniResult> {
    return chains.run(() => this.addChain(att, timer));
  }

  private async addChain(att: Attachment, timer?: PhaseTimer): Promise<CniResult> {
    let result: CniResult | undefined;
    try {
      for (const plugin of this.config.plugins) {
        const call = this.call('ADD', plugin, att, result);
        const out = (await (timer ? timer.span(`cni.${plugin.type}`, call) : call)) as CniResult | undefined;
        result = out ?? result;
      }
    } catch (err) {
      await this.runDel(att, result).catch(() => undefined);
      throw err;
    }
    if (!result) throw new Error(`CNI network ${this.config.name}: the plugin chain returned no result`);
    // A crash here leaves an attachment with no cached result: DEL then runs with the configured network.
    failpoint('pod.cni.before-cache');
    const entry: CacheEntry = {
      kind: 'cniCacheV1',
      containerId: att.containerId,
      networkName: this.config.name,
      ifName: att.ifname,
      netns: att.netns,
      cniArgs: Object.entries(att.args),
      capabilityArgs: att.capabilityArgs,
      config: this.config.raw,
      result,
    };
    const write = async () => {
      await fs.mkdir(path.dirname(this.cacheFile(att)), { recursive: true, mode: 0o700 });
      await writeJsonAtomic(this.cacheFile(att), entry);
    };
    await (timer ? timer.span('cni.cache', write()) : write());
    return result;
  }

  /** The cached result of an earlier ADD, if any. */
  async cached(att: Pick<Attachment, 'containerId' | 'ifname'>): Promise<CacheEntry | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.cacheFile(att), 'utf8')) as CacheEntry;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private async runDel(att: Attachment, prevResult: CniResult | undefined): Promise<void> {
    const errors: string[] = [];
    for (const plugin of [...this.config.plugins].reverse()) {
      try {
        await this.call('DEL', plugin, att, prevResult);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length) throw new Error(errors.join('; '));
  }

  /** DEL with the cached result; idempotent (plugins must tolerate a second DEL). Removes the cache. */
  async del(att: Attachment): Promise<void> {
    const cached = await this.cached(att);
    await chains.run(() => this.runDel(cached ? { ...att, capabilityArgs: cached.capabilityArgs } : att, cached?.result));
    await fs.rm(this.cacheFile(att), { force: true });
  }

  async check(att: Attachment): Promise<void> {
    const cached = await this.cached(att);
    if (!cached) throw new Error(`CNI CHECK: no cached result for ${att.containerId}`);
    await chains.run(async () => {
      for (const plugin of this.config.plugins) await this.call('CHECK', plugin, att, cached.result);
    });
  }
}
