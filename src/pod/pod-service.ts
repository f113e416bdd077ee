// Pod sandboxes: run, stop, remove, status, list. A sandbox is pinned namespaces (berth-pinns), a CNI
// attachment, a cgroup and per-pod files; no pause container and no image. The record is written before
// the first side effect (`creating`) and everything is named from the pod id, so one idempotent
// teardown (teardown.ts) undoes a failed run, a stop or remove, and whatever a crash left (recover()).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, messageOf } from '../errors';
import { mount, MS_NODEV, MS_NOEXEC, MS_NOSUID } from '../native';
import type { NetworkManager } from '../network/network-manager';
import { writeFileAtomic } from '../state/atomic-file';
import { KeyedMutex } from '../util/mutex';
import type { CgroupDriver, ContainerCgroup } from '../cgroups/driver';
import { pinNamespaces, type PinnedKind } from './namespaces';
import { isAlive, startPodInit } from './pod-init';
import { PodTeardown, podNames, scanInits, STOP_STEPS, TEARDOWN_STEPS } from './teardown';
import { sweepOrphans } from './orphans';
import { failpoint } from '../state/failpoints';
import { hostnameFile, hostsFile, resolvConf, validateHostname } from './pod-files';
import { fullNameOf, type SandboxRecord, type SandboxSpec } from './sandbox';
import { RecordStore } from '../state/record-store';
import { ContainerEvents, transitions } from '../container/container-events';
import { Repairs } from '../state/repairs';
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
  private readonly teardown: PodTeardown;

  constructor(
    private readonly config: BerthConfig,
    private readonly network: NetworkManager,
    private readonly cgroups: CgroupDriver,
    private readonly log: Logger,
    /** Start-up reconciliation's record of what it repaired. */
    private readonly repairs: Repairs = new Repairs(log),
    /** Where the sandbox's own CREATED, STARTED, STOPPED and DELETED are told (GetContainerEvents). */
    readonly events: ContainerEvents = new ContainerEvents(),
  ) {
    this.store = new RecordStore<SandboxRecord>(path.join(config.root, 'pods'), (before, after) => this.announce(before, after));
    this.teardown = new PodTeardown(config.state, network, cgroups, log);
  }

  /**
   * A sandbox record written or deleted: its events, as containerd and CRI-O report a sandbox (its id as
   * the container's). Ready is running; not ready, and being removed, is stopped; being created is
   * nothing yet.
   */
  private announce(before: SandboxRecord | undefined, after: SandboxRecord | undefined): void {
    const seen = (r: SandboxRecord | undefined) => (r && r.state !== 'creating' ? { state: r.state === 'ready' ? 'running' : 'exited' } : undefined);
    const id = (after ?? before)!.id;
    for (const type of transitions(seen(before), seen(after))) this.events.publish({ type, containerId: id, podId: id });
  }

  setContainerHooks(hooks: PodContainerHooks): void {
    this.hooks = hooks;
  }

  private nsDir(): string {
    return path.join(this.config.state, 'ns');
  }

  /**
   * Start-up reconciliation: finishes or undoes what a crash cut short (a `creating` record is rolled
   * back, a `removing` one rolled forward), reports not ready what lost its state or its init, then
   * sweeps whatever carries a pod's name but has no record. Every repair is logged and counted.
   */
  async recover(): Promise<void> {
    const inits = await scanInits(this.config.state);
    const quarantined = (file: string, reason: string) => this.repairs.record('record-quarantined', { file, reason }, 'a pod record that does not parse was moved aside');
    for (const record of await this.store.load(quarantined)) {
      const base = { pod: record.id, name: record.fullName };
      const opts = { init: record.init, inits: inits.get(record.id), networkName: record.network?.name };
      if (record.state === 'creating' || record.state === 'removing') {
        const rollBack = record.state === 'creating';
        try {
          await this.teardown.run(record.id, record.spec, opts);
          await this.store.delete(record);
          if (rollBack) this.repairs.record('pod-rolled-back', base, 'a RunPodSandbox cut short by a crash was rolled back');
          else this.repairs.record('pod-removal-completed', base, 'a RemovePodSandbox cut short by a crash was completed');
        } catch (err) {
          // Left for the kubelet's RemovePodSandbox to finish: listed, NOTREADY.
          if (rollBack) await this.store.save({ ...record, state: 'removing' });
          this.log.error({ ...base, error: messageOf(err) }, 'repairing a sandbox cut short by a crash failed; RemovePodSandbox retries it');
        }
        continue;
      }
      if (record.state !== 'ready') continue;
      const alive = await fs.access(record.stateDir).then(() => true, () => false);
      if (!alive) {
        await this.teardown.run(record.id, record.spec, { ...opts, steps: STOP_STEPS }).catch((err) => this.log.error({ ...base, error: messageOf(err) }, 'stopping a sandbox whose state was lost failed'));
        await this.store.save({ ...record, state: 'notready', pins: {}, ips: [] });
        this.log.warn({ pod: record.id }, 'sandbox state was lost (reboot?): reported not ready');
      } else if (record.init && !(await isAlive(record.init))) {
        await this.store.save({ ...record, state: 'notready' });
        this.log.warn({ pod: record.id, init: record.init.pid }, "the pod's init died while berthd was away: reported not ready");
      }
    }
    await sweepOrphans({ state: this.config.state, known: new Set(this.store.list().map((r) => r.id)), inits, network: this.network, cgroups: this.cgroups, teardown: this.teardown, repairs: this.repairs, log: this.log });
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
      if (!existing || existing.state === 'creating') throw new AlreadyExistsError(`pod sandbox name ${fullName} is being created`);
      throw new AlreadyExistsError(`pod sandbox name ${fullName} is already used by sandbox ${owner}; remove it first`);
    }
    const id = randomBytes(32).toString('hex');
    if (!this.store.reserve(fullName, id)) throw new AlreadyExistsError(`pod sandbox name ${fullName} is being created`);
    const timer = new PhaseTimer();
    return this.locks.run(id, async () => {
      let intent: SandboxRecord | undefined;
      const progress = { attached: false };
      try {
        intent = this.intentRecord(id, fullName, spec, requestKey);
        await this.store.save(intent);
        failpoint('pod.after-record');
        timer.mark('intent');
        const record = await this.create(intent, timer, progress);
        failpoint('pod.before-ready');
        await this.store.save(record);
        timer.mark('record');
        this.log.info({ pod: id, name: fullName, ips: record.ips, ms: timer.result() }, 'sandbox ready');
        return id;
      } catch (err) {
        await this.rollBack(id, spec, intent, progress.attached);
        if (!this.store.get(id)) this.locks.forget(id);
        throw err;
      }
    });
  }

  /** Undoes a failed RunPodSandbox; when that fails too, the record stays (`removing`) for RemovePodSandbox. */
  private async rollBack(id: string, spec: SandboxSpec, intent: SandboxRecord | undefined, attached: boolean): Promise<void> {
    if (!intent) {
      this.store.release(fullNameOf(spec), id);
      return;
    }
    try {
      // A CNI ADD that failed has deleted its chain again itself (and one never started made nothing).
      await this.teardown.run(id, spec, { steps: TEARDOWN_STEPS.filter((s) => s !== 'cni-del' || attached) });
      await this.store.delete(intent);
    } catch (err) {
      this.log.error({ pod: id, error: messageOf(err) }, 'cleanup after a failed RunPodSandbox failed: the sandbox is left NOTREADY for RemovePodSandbox');
      await this.store.save({ ...intent, state: 'removing' }).catch(() => undefined);
    }
  }

  /** The record as written before the first side effect: everything in it derives from the id and the spec. */
  private intentRecord(id: string, fullName: string, spec: SandboxSpec, requestKey: string): SandboxRecord {
    const podCgroup = this.cgroups.pod(id, spec.cgroupParent);
    return {
      id,
      fullName,
      spec,
      requestKey,
      state: 'creating',
      createdAt: String(BigInt(Date.now()) * 1_000_000n),
      ips: [],
      pins: {},
      cgroup: podCgroup.path,
      ownsCgroup: podCgroup.owned,
      stateDir: podNames(this.config.state, id).stateDir,
    };
  }

  /**
   * RunPodSandbox's steps: state dir, pinned namespaces, then the CNI ADD in parallel with shm, cgroup,
   * pod files and init, then /etc/hosts. Nothing here undoes anything: teardownPod undoes them all.
   */
  private async create(intent: SandboxRecord, timer: PhaseTimer, progress: { attached: boolean }): Promise<SandboxRecord> {
    const { id, spec } = intent;
    const names = podNames(this.config.state, id);
    await fs.mkdir(names.stateDir, { recursive: true, mode: 0o711 });
    failpoint('pod.after-statedir');

    const hostNetwork = spec.namespaces.network === 'node';
    const kinds: Exclude<PinnedKind, 'user'>[] = [];
    if (!hostNetwork) kinds.push('net', 'uts');
    if (spec.namespaces.ipc !== 'node') kinds.push('ipc');
    const hostname = spec.hostname || (hostNetwork ? '' : spec.name.slice(0, 63));
    let pins: SandboxRecord['pins'] = {};
    if (kinds.length) {
      const made = await pinNamespaces({ dir: this.nsDir(), id, kinds, userns: spec.userns, hostname: kinds.includes('uts') ? hostname : undefined, sysctls: checkSysctls(spec) });
      pins = { net: made.net, ipc: made.ipc, uts: made.uts, ...(made.user ? { user: made.user } : {}) };
      failpoint('pod.after-netns');
    }

    // The CNI plugins are most of a sandbox's start-up time: everything that does not need the pod's
    // address runs while they do.
    let shm: string | undefined;
    let ips: string[] = [];
    let network: SandboxRecord['network'];
    let init: SandboxRecord['init'];
    const realHostname = hostname || (await fs.readFile('/proc/sys/kernel/hostname', 'utf8')).trim();
    const attachNetwork = async () => {
      if (!pins.net) return;
      const attached = await this.network.attach({ podId: id, netns: pins.net, name: spec.name, namespace: spec.namespace, uid: spec.uid, portMappings: spec.portMappings, dns: spec.dns, bandwidth: spec.bandwidth }, timer);
      progress.attached = true;
      failpoint('pod.after-cni');
      ips = attached.ips;
      network = { name: attached.network, ifname: 'eth0' };
    };
    // The host side runs while the plugins do, its steps one after another: it is not the long pole
    // (the CNI chain is), and on a busy node steps run at once would only take CPU from the plugins.
    // Each step's time goes to the phase log (host.*).
    const prepareHost = async () => {
      if (spec.namespaces.ipc !== 'node') {
        await timer.span('host.shm', (async () => {
          await fs.mkdir(names.shm, { mode: 0o1777 });
          mount('shm', names.shm, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,${SHM_SIZE}`);
        })());
        shm = names.shm;
        failpoint('pod.after-shm');
      }
      await timer.span('host.cgroup', this.cgroups.createPod(id, spec.cgroupParent));
      failpoint('pod.after-cgroup');
      await timer.span('host.files', (async () => {
        const hostResolv = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
        await writeFileAtomic(path.join(names.stateDir, 'hostname'), hostnameFile(realHostname), 0o644);
        await writeFileAtomic(path.join(names.stateDir, 'resolv.conf'), resolvConf(spec.dns, hostResolv), 0o644);
        await ownedByPodRoot(spec, [path.join(names.stateDir, 'hostname'), path.join(names.stateDir, 'resolv.conf')]);
      })());
      if (spec.namespaces.pid === 'pod') {
        const cgroupArgs = await timer.span('host.init-cgroup', this.cgroups.prepareInit(id, spec.cgroupParent));
        init = await timer.span('host.init', startPodInit(names.initPidFile, names.pins.pid, cgroupArgs));
        failpoint('pod.after-init');
        await timer.span('host.init-placed', this.cgroups.placeInit(id, spec.cgroupParent, init.pid));
        failpoint('pod.after-init-cgroup');
      }
    };
    timer.mark('namespaces');
    const outcomes = await Promise.allSettled([timer.span('network', attachNetwork()), timer.span('host', prepareHost())]);
    timer.mark('network+host');
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    if (init) pins = { ...pins, pid: names.pins.pid };
    await writeFileAtomic(path.join(names.stateDir, 'hosts'), hostNetwork ? await fs.readFile('/etc/hosts', 'utf8') : hostsFile(realHostname, ips), 0o644);
    await ownedByPodRoot(spec, [path.join(names.stateDir, 'hosts')]);

    return {
      ...intent,
      state: 'ready',
      ips,
      pins,
      ...(shm ? { shm } : {}),
      ...(network ? { network } : {}),
      ...(init ? { init } : {}),
    };
  }

  /**
   * UpdatePodSandboxResources: the pod-level resources the kubelet has just set on the pod's cgroup,
   * kept as the pod's configuration (containerd keeps them likewise). NotFound for an unknown sandbox.
   */
  async updateResources(idOrPrefix: string, podResources: SandboxSpec['podResources']): Promise<void> {
    const found = this.status(idOrPrefix);
    await this.locks.run(found.id, async () => {
      const record = this.store.get(found.id);
      if (!record || record.state === 'removing') throw new NotFoundError(`pod sandbox ${JSON.stringify(idOrPrefix)} not found`);
      await this.store.save({ ...record, spec: { ...record.spec, podResources } });
    });
  }

  /**
   * Stops the sandbox: its init (and so every process of its PID namespace) and its network go, the
   * latter by CNI DEL always, also for a NOTREADY sandbox (DEL is idempotent); then the record says
   * `notready`. A crash in between just repeats it. An unknown id is not an error.
   */
  async stop(idOrPrefix: string): Promise<void> {
    const found = this.store.resolve(idOrPrefix);
    if (!found || found.state === 'creating') return;
    await this.hooks?.stopPodContainers(found.id);
    await this.locks.run(found.id, async () => {
      const record = this.store.get(found.id);
      if (!record || stopCompleted(record)) return;
      const phases = new PhaseTimer();
      await this.teardown.run(record.id, record.spec, {
        steps: STOP_STEPS,
        init: record.init,
        networkName: record.network?.name,
        after: (step) => step === 'kill-init' ? failpoint('pod.stop.after-init') : step === 'cni-del' ? failpoint('pod.stop.after-cni') : undefined,
        phases,
      });
      if (record.state === 'ready' || record.pins.net) {
        await this.store.save({ ...record, state: 'notready', pins: { ...record.pins, net: undefined } });
        phases.mark('record');
        this.log.info({ pod: record.id, ms: phases.result() }, 'sandbox stopped');
      }
    });
  }

  /** Removes the sandbox, stopping it first: `removing`, then teardownPod, then the record goes. Idempotent. */
  async remove(idOrPrefix: string): Promise<void> {
    const found = this.store.resolve(idOrPrefix);
    if (!found || found.state === 'creating') return;
    await this.stop(found.id);
    await this.hooks?.removePodContainers(found.id);
    await this.locks.run(found.id, async () => {
      const record = this.store.get(found.id);
      if (!record) return;
      const phases = new PhaseTimer();
      if (record.state !== 'removing') await this.store.save({ ...record, state: 'removing' });
      phases.mark('intent');
      failpoint('pod.remove.after-marking');
      // The stop above has just run CNI DEL (it throws when that fails): once is enough.
      await this.teardown.run(record.id, record.spec, { init: record.init, steps: TEARDOWN_STEPS.filter((step) => step !== 'cni-del'), phases });
      failpoint('pod.remove.after-teardown');
      await this.store.delete(record);
      phases.mark('record');
      this.log.info({ pod: record.id, ms: phases.result() }, 'sandbox removed');
    });
    this.locks.forget(found.id);
  }

  /** Where a container of the pod gets its cgroup (the pod's driver decides). */
  containerCgroup(pod: SandboxRecord, containerId: string): ContainerCgroup {
    return this.cgroups.container(pod.id, pod.spec.cgroupParent, containerId);
  }

  status(idOrPrefix: string): SandboxRecord {
    const record = this.store.resolve(idOrPrefix);
    if (!record || record.state === 'creating') throw new NotFoundError(`pod sandbox ${JSON.stringify(idOrPrefix)} not found`);
    return record;
  }

  list(filter: SandboxFilter = {}): SandboxRecord[] {
    return this.store.list().filter((r) => {
      if (r.state === 'creating') return false;
      if (filter.id && !r.id.startsWith(filter.id)) return false;
      if (filter.state && (r.state === 'ready') !== (filter.state === 'ready')) return false;
      for (const [k, v] of Object.entries(filter.labels ?? {})) if (r.spec.labels[k] !== v) return false;
      return true;
    });
  }
}

/**
 * In a pod with its own user namespace, the files berth makes for it belong to the pod's root (the host id
 * that container id 0 maps to), as the host's root's files do to the host's: the pod's root may write
 * its /etc/hosts as it may elsewhere.
 */
async function ownedByPodRoot(spec: SandboxSpec, files: string[]): Promise<void> {
  if (!spec.userns) return;
  const { uids, gids } = spec.userns;
  for (const file of files) await fs.chown(file, uids.hostId, gids.hostId);
}

/**
 * A stop that ran to its end (its init killed, CNI DEL done, the netns pin dropped from the record) need not
 * run again: the kubelet repeats StopPodSandbox and RemovePodSandbox stops first. A sandbox found not ready
 * at start-up keeps its netns pin until a stop has run DEL for it.
 */
function stopCompleted(record: SandboxRecord): boolean {
  return record.state === 'notready' && !record.pins.net;
}
