// Pod sandboxes: run, stop, remove, status, list. A sandbox is pinned namespaces (berth-pinns), a CNI
// attachment, a cgroup and per-pod files; no pause container and no image. Every step of RunPodSandbox
// has its undo, run in reverse when a later step fails, so a failed run leaves nothing behind.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, messageOf } from '../errors';
import { MNT_DETACH, mount, MS_NODEV, MS_NOEXEC, MS_NOSUID, umount2, isNativeError } from '../native';
import type { NetworkManager } from '../network/network-manager';
import { writeFileAtomic } from '../state/atomic-file';
import { KeyedMutex } from '../util/mutex';
import { rollBack, type Undo } from '../util/undo';
import type { CgroupDriver, ContainerCgroup } from '../cgroups/driver';
import { pinNamespaces, unpin, type PinnedKind } from './namespaces';
import { isAlive, startPodInit, stopPodInit } from './pod-init';
import { hostnameFile, hostsFile, resolvConf, validateHostname } from './pod-files';
import { fullNameOf, type SandboxRecord, type SandboxSpec } from './sandbox';
import { RecordStore } from '../state/record-store';
import { PhaseTimer } from '../util/phase-timer';

const SHM_SIZE = 'size=65536k';
const IPC_SYSCTLS = /^(kernel\.(shm[a-z_]+|msg[a-z_]+|sem)|fs\.mqueue\..+)$/;

export interface SandboxFilter {
  id?: string;
  state?: 'ready' | 'notready';
  labels?: Record<string, string>;
}

/** The sysctls a pod may set: only those its own namespaces isolate (as the kubelet's safe list). */
export function checkSysctls(spec: SandboxSpec): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawKey, value] of Object.entries(spec.sysctls)) {
    const key = rawKey.replace(/\//g, '.');
    if (key.startsWith('net.')) {
      if (spec.namespaces.network === 'node') throw new InvalidArgumentError(`sysctl ${rawKey} needs the pod's own network namespace (hostNetwork pod)`);
    } else if (IPC_SYSCTLS.test(key)) {
      if (spec.namespaces.ipc === 'node') throw new InvalidArgumentError(`sysctl ${rawKey} needs the pod's own IPC namespace (hostIPC pod)`);
    } else {
      throw new InvalidArgumentError(`sysctl ${rawKey} is not namespaced: a pod cannot set it`);
    }
    out[key] = value;
  }
  return out;
}

export function validateSpec(spec: SandboxSpec, cgroups: CgroupDriver): void {
  if (!spec.name) throw new InvalidArgumentError('PodSandboxConfig.metadata.name is empty');
  if (!spec.uid) throw new InvalidArgumentError('PodSandboxConfig.metadata.uid is empty');
  if (!spec.namespace) throw new InvalidArgumentError('PodSandboxConfig.metadata.namespace is empty');
  if (!Number.isInteger(spec.attempt) || spec.attempt < 0) throw new InvalidArgumentError('PodSandboxConfig.metadata.attempt is invalid');
  for (const part of [spec.name, spec.namespace]) {
    if (/[\s/_]/.test(part)) throw new InvalidArgumentError(`pod metadata ${JSON.stringify(part)} contains "/", "_" or spaces`);
  }
  if (spec.hostname) validateHostname(spec.hostname);
  cgroups.validateParent(spec.cgroupParent);
  checkSysctls(spec);
}

/** What the pod service asks of the containers in a pod when the pod stops or goes. */
export interface PodContainerHooks {
  stopPodContainers(podId: string): Promise<void>;
  removePodContainers(podId: string): Promise<void>;
}

export class PodService {
  private readonly store: RecordStore<SandboxRecord>;
  /** One lifecycle operation per sandbox at a time; different sandboxes proceed in parallel. */
  private readonly locks = new KeyedMutex();
  /** RunPodSandbox calls in progress, by name: an identical retry joins the first instead of failing. */
  private readonly running = new Map<string, { requestKey: string; result: Promise<string> }>();
  private hooks: PodContainerHooks | undefined;

  constructor(
    private readonly config: BerthConfig,
    private readonly network: NetworkManager,
    private readonly cgroups: CgroupDriver,
    private readonly log: Logger,
  ) {
    this.store = new RecordStore<SandboxRecord>(path.join(config.root, 'pods'));
  }

  setContainerHooks(hooks: PodContainerHooks): void {
    this.hooks = hooks;
  }

  private nsDir(): string {
    return path.join(this.config.state, 'ns');
  }

  /** Loads every record; a sandbox whose volatile side is gone (a reboot) is reported not ready. */
  async recover(): Promise<void> {
    for (const record of await this.store.load()) {
      const alive = await fs.access(record.stateDir).then(() => true, () => false);
      if (!alive && record.state === 'ready') {
        await this.store.save({ ...record, state: 'notready', pins: {}, ips: [] });
        this.log.warn({ pod: record.id }, 'sandbox state was lost (reboot?): reported not ready');
      } else if (record.state === 'ready' && record.init && !(await isAlive(record.init))) {
        await this.store.save({ ...record, state: 'notready' });
        this.log.warn({ pod: record.id, init: record.init.pid }, "the pod's init died while berthd was away: reported not ready");
      }
    }
    this.log.info({ sandboxes: this.store.list().length }, 'sandboxes loaded');
  }

  async run(spec: SandboxSpec, requestKey: string): Promise<string> {
    validateSpec(spec, this.cgroups);
    const fullName = fullNameOf(spec);
    const inFlight = this.running.get(fullName);
    if (inFlight && inFlight.requestKey === requestKey) return inFlight.result;
    const result = this.runOnce(spec, fullName, requestKey);
    if (!inFlight) {
      this.running.set(fullName, { requestKey, result });
      result.then(
        () => this.running.delete(fullName),
        () => this.running.delete(fullName),
      );
    }
    return result;
  }

  private async runOnce(spec: SandboxSpec, fullName: string, requestKey: string): Promise<string> {
    const owner = this.store.ownerOf(fullName);
    if (owner) {
      const existing = this.store.get(owner);
      // A kubelet retry of a call that timed out gets the first result, not a "name reserved" dead end.
      if (existing && existing.requestKey === requestKey && existing.state === 'ready') return existing.id;
      throw new AlreadyExistsError(`pod sandbox name ${fullName} is already used by sandbox ${owner}; remove it first`);
    }
    const id = randomBytes(32).toString('hex');
    if (!this.store.reserve(fullName, id)) throw new AlreadyExistsError(`pod sandbox name ${fullName} is being created`);
    const undo: Undo[] = [];
    const timer = new PhaseTimer();
    try {
      const record = await this.create(id, fullName, spec, requestKey, undo, timer);
      await this.store.save(record);
      timer.mark('record');
      this.log.info({ pod: id, name: fullName, ips: record.ips, ms: timer.result() }, 'sandbox ready');
      return id;
    } catch (err) {
      await rollBack(undo, (e) => this.log.error({ pod: id, error: messageOf(e) }, 'cleanup after a failed RunPodSandbox failed'));
      this.store.release(fullName, id);
      throw err;
    }
  }

  private async create(id: string, fullName: string, spec: SandboxSpec, requestKey: string, undo: Undo[], timer: PhaseTimer): Promise<SandboxRecord> {
    const stateDir = path.join(this.config.state, 'pods', id);
    await fs.mkdir(stateDir, { recursive: true, mode: 0o711 });
    undo.push(() => fs.rm(stateDir, { recursive: true, force: true }));

    const hostNetwork = spec.namespaces.network === 'node';
    const kinds: PinnedKind[] = [];
    if (!hostNetwork) kinds.push('net', 'uts');
    if (spec.namespaces.ipc !== 'node') kinds.push('ipc');
    const hostname = spec.hostname || (hostNetwork ? '' : spec.name.slice(0, 63));
    let pins: SandboxRecord['pins'] = {};
    if (kinds.length) {
      const made = await pinNamespaces({ dir: this.nsDir(), id, kinds, hostname: kinds.includes('uts') ? hostname : undefined, sysctls: checkSysctls(spec) });
      pins = { net: made.net, ipc: made.ipc, uts: made.uts };
      undo.push(async () => {
        for (const p of Object.values(pins)) if (p) await unpin(p);
      });
    }

    // The CNI plugins are most of a sandbox's start-up time: everything that does not need the pod's
    // address runs while they do.
    let shm: string | undefined;
    let ips: string[] = [];
    let network: SandboxRecord['network'];
    let init: SandboxRecord['init'];
    let pidPin: string | undefined;
    const podCgroup = this.cgroups.pod(id, spec.cgroupParent);
    const realHostname = hostname || (await fs.readFile('/proc/sys/kernel/hostname', 'utf8')).trim();
    const attachNetwork = async () => {
      if (!pins.net) return;
      const attachment = { podId: id, netns: pins.net, name: spec.name, namespace: spec.namespace, uid: spec.uid, portMappings: spec.portMappings, dns: spec.dns, bandwidth: spec.bandwidth };
      const attached = await this.network.attach(attachment);
      undo.push(() => this.network.detach(attached.network, attachment));
      ips = attached.ips;
      network = { name: attached.network, ifname: 'eth0' };
    };
    const prepareHost = async () => {
      if (spec.namespaces.ipc !== 'node') {
        const dir = path.join(stateDir, 'shm');
        await fs.mkdir(dir, { mode: 0o1777 });
        mount('shm', dir, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,${SHM_SIZE}`);
        undo.push(async () => umount2(dir, MNT_DETACH));
        shm = dir;
      }
      await this.cgroups.createPod(id, spec.cgroupParent);
      undo.push(() => this.cgroups.removePod(id, spec.cgroupParent));
      const hostResolv = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
      await writeFileAtomic(path.join(stateDir, 'hostname'), hostnameFile(realHostname), 0o644);
      await writeFileAtomic(path.join(stateDir, 'resolv.conf'), resolvConf(spec.dns, hostResolv), 0o644);
      if (spec.namespaces.pid === 'pod') {
        const pin = path.join(this.nsDir(), 'pid', id);
        const started = await startPodInit(path.join(stateDir, 'init.pid'), pin);
        undo.push(async () => {
          await stopPodInit(started);
          await unpin(pin);
        });
        init = started;
        pidPin = pin;
        await this.cgroups.placeInit(id, spec.cgroupParent, started.pid);
      }
    };
    timer.mark('namespaces');
    const outcomes = await Promise.allSettled([timer.span('network', attachNetwork()), timer.span('host', prepareHost())]);
    timer.mark('network+host');
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    if (pidPin) pins = { ...pins, pid: pidPin };
    await writeFileAtomic(path.join(stateDir, 'hosts'), hostNetwork ? await fs.readFile('/etc/hosts', 'utf8') : hostsFile(realHostname, ips), 0o644);


    return {
      id,
      fullName,
      spec,
      requestKey,
      state: 'ready',
      createdAt: String(BigInt(Date.now()) * 1_000_000n),
      ips,
      pins,
      cgroup: podCgroup.path,
      ownsCgroup: podCgroup.owned,
      stateDir,
      ...(shm ? { shm } : {}),
      ...(network ? { network } : {}),
      ...(init ? { init } : {}),
    };
  }

  /** Stops the sandbox: its network is released. Idempotent; an unknown id is not an error. */
  async stop(idOrPrefix: string): Promise<void> {
    const found = this.store.resolve(idOrPrefix);
    if (!found) return;
    await this.hooks?.stopPodContainers(found.id);
    await this.locks.run(found.id, async () => {
      const record = this.store.get(found.id);
      if (!record || record.state === 'notready') return;
      if (record.network && record.pins.net) {
        const s = record.spec;
        await this.network.detach(record.network.name, { podId: record.id, netns: record.pins.net, name: s.name, namespace: s.namespace, uid: s.uid, portMappings: s.portMappings });
      }
      if (record.pins.net) await unpin(record.pins.net);
      // The init going takes every process of the pod's PID namespace with it.
      if (record.init) await stopPodInit(record.init);
      await this.store.save({ ...record, state: 'notready', pins: { ...record.pins, net: undefined } });
      this.log.info({ pod: record.id }, 'sandbox stopped');
    });
  }

  /** Removes the sandbox, stopping it first. Idempotent. */
  async remove(idOrPrefix: string): Promise<void> {
    const found = this.store.resolve(idOrPrefix);
    if (!found) return;
    await this.stop(found.id);
    await this.hooks?.removePodContainers(found.id);
    await this.locks.run(found.id, async () => {
      const record = this.store.get(found.id);
      if (!record) return;
      for (const p of Object.values(record.pins)) if (p) await unpin(p);
      if (record.shm) {
        try {
          umount2(record.shm, MNT_DETACH);
        } catch (err) {
          if (!isNativeError(err, 'EINVAL') && !isNativeError(err, 'ENOENT')) throw err;
        }
      }
      await fs.rm(record.stateDir, { recursive: true, force: true });
      await this.cgroups.removePod(record.id, record.spec.cgroupParent);
      await this.store.delete(record);
      this.log.info({ pod: record.id }, 'sandbox removed');
    });
    this.locks.forget(found.id);
  }

  /** Where a container of the pod gets its cgroup (the pod's driver decides). */
  containerCgroup(pod: SandboxRecord, containerId: string): ContainerCgroup {
    return this.cgroups.container(pod.id, pod.spec.cgroupParent, containerId);
  }

  status(idOrPrefix: string): SandboxRecord {
    const record = this.store.resolve(idOrPrefix);
    if (!record) throw new NotFoundError(`pod sandbox ${JSON.stringify(idOrPrefix)} not found`);
    return record;
  }

  list(filter: SandboxFilter = {}): SandboxRecord[] {
    return this.store.list().filter((r) => {
      if (filter.id && !r.id.startsWith(filter.id)) return false;
      if (filter.state && r.state !== filter.state) return false;
      for (const [k, v] of Object.entries(filter.labels ?? {})) if (r.spec.labels[k] !== v) return false;
      return true;
    });
  }
}
