// Containers: create, start, stop, remove, status, list, update, reopen log, exec. berthd never holds
// a container's stdio or waits on its process: each container has a berth-monitor that outlives
// berthd, and berthd reads the monitor's files to learn what happened while it was away.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, UnimplementedError, messageOf } from '../errors';
import { probeCriu } from './checkpoint';
import { resolveCdiDevices, type CdiEdits } from './cdi';
import { makeDirs } from '../storage/disk';
import type { ImageService } from '../image/image-service';
import type { UsageSource } from '../image/gc';
import { findMonitors, readExit, reopenLog, startMonitor, stopMonitor, monitorFiles, CreateFailedError, type ExitStatus, type MonitorFiles } from '../monitor/monitor';
import { lastRuntimeError, type RuntimeRegistry } from '../oci/runtime';
import { controllerDir, missingControllers } from '../cgroups/layout';
import { destroyCgroup } from '../cgroups/cgroupfs';
import { failpoint } from '../state/failpoints';
import type { PodContainerHooks, PodService } from '../pod/pod-service';
import { sameUserns, type SandboxRecord } from '../pod/sandbox';
import { Repairs } from '../state/repairs';
import { RecordStore } from '../state/record-store';
import { mountsUnder, rootfsLayout, unmountIdmappedLayers, unmountImageVolumes, unmountRootfs } from '../storage/rootfs';
import { KeyedMutex } from '../util/mutex';
import { PhaseTimer } from '../util/phase-timer';
import { isAlive, processStartTime, type ProcessIdentity } from '../util/process';
import { createBundle, imageConfigBody } from './bundle';
import { containerFullName, nowNanos, stopSignalOf, rfc3339ToNanos, type ContainerExit, type ContainerRecord, type ContainerSpec, type ContainerState } from './container';
import { execSync, type ExecResult } from './exec-sync';
import { ociResources, updatedResources, type ContainerRequest } from './oci-spec';
import { poll } from '../util/poll';
import { isAdoptedChild, onAdoptedExit } from '../util/spawn';
import { ContainerEvents, transitions } from './container-events';

export interface ContainerFilter {
  id?: string;
  podId?: string;
  state?: ContainerState;
  labels?: Record<string, string>;
}

/** How long a container may take to die after SIGKILL before StopContainer reports it. */
const KILL_GRACE_MS = 10_000;

/** How often the monitors of an earlier berthd, which SIGCHLD never reports, are checked by start
 * time while any still run; none of berthd's own. */
const SWEEP_INTERVAL_MS = 5 * 60_000;

/** How long after an event in the exits directory it is read once through: exits an overflowed inotify
 * queue lost are found then, since an overflow can only follow events berthd has not read yet. */
const EXITS_RECONCILE_DELAY_MS = 1000;

/** The lowest oom_score_adj berth may give a container: without CAP_SYS_RESOURCE, its own. */
function ownOomScoreAdj(): number {
  try {
    return Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/** Whether a process with this PID exists (signal 0 checks without sending anything). */
function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function exitOf(status: ExitStatus): ContainerExit {
  const reason = status.oomKilled ? 'OOMKilled' : status.error ? 'ContainerCannotRun' : status.exitCode === 0 ? 'Completed' : 'Error';
  return { exitCode: status.exitCode, reason, message: status.error, finishedAt: rfc3339ToNanos(status.finishedAt) };
}

/**
 * The error class of a runtime's failed create: what the node cannot give (a cgroup controller, the
 * systemd driver's needs) is FAILED_PRECONDITION, a container's unit left from before ALREADY_EXISTS;
 * anything else comes from the request (a bad mount, a missing binary in the image).
 */
function createFailureClass(detail: string): typeof InvalidArgumentError {
  if (/cgroup controller .* is not available|--systemd-cgroup needs/.test(detail)) return FailedPreconditionError;
  if (/systemd unit .* already exists/.test(detail)) return AlreadyExistsError;
  if (/no space left on device|disk quota exceeded/i.test(detail)) return ResourceExhaustedError;
  return InvalidArgumentError;
}

/**
 * A container lives in its pod's user namespace: options that name another (or the host's, in a pod with
 * its own) are refused, and so is an idmapped mount with other mappings than the pod's, since berth maps a
 * mount with the pod's user namespace itself.
 */
function checkUserns(spec: ContainerSpec, pod: SandboxRecord): void {
  const podUserns = pod.spec.userns;
  if (spec.userns !== undefined && !sameUserns(spec.userns === 'node' ? undefined : spec.userns, podUserns)) {
    throw new InvalidArgumentError(`container ${spec.name}: its user namespace options differ from its pod's (${podUserns ? 'POD with other mappings, or NODE' : 'the pod uses the host\'s'})`);
  }
  spec.process.mounts.forEach((m, i) => {
    if (!m.idmap) return;
    if (!podUserns) throw new InvalidArgumentError(`container ${spec.name}: mounts[${i}] is idmapped but the pod has no user namespace`);
    if (!sameUserns(m.idmap, podUserns)) throw new InvalidArgumentError(`container ${spec.name}: mounts[${i}] is idmapped with other mappings than the pod's user namespace`);
  });
}

export class ContainerService implements UsageSource, PodContainerHooks {
  private readonly store: RecordStore<ContainerRecord>;
  private readonly locks = new KeyedMutex();
  private readonly minOomScoreAdj = ownOomScoreAdj();
  private watcher: FSWatcher | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private reconciler: NodeJS.Timeout | undefined;
  private stopReaping: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly config: BerthConfig,
    private readonly pods: PodService,
    private readonly images: ImageService,
    private readonly runtimes: RuntimeRegistry,
    private readonly log: Logger,
    /** Start-up reconciliation's record of what it repaired. */
    private readonly repairs: Repairs = new Repairs(log),
    /** Where CREATED, STARTED, STOPPED and DELETED are told (GetContainerEvents). */
    readonly events: ContainerEvents = new ContainerEvents(),
  ) {
    this.store = new RecordStore<ContainerRecord>(path.join(config.root, 'containers'), (before, after) => this.announce(before, after));
  }

  /** A record written or deleted: its events. A record being created is not a container yet. */
  private announce(before: ContainerRecord | undefined, after: ContainerRecord | undefined): void {
    const seen = (r: ContainerRecord | undefined) => (r && r.phase !== 'creating' ? r : undefined);
    const record = after ?? before!;
    for (const type of transitions(seen(before), seen(after))) this.events.publish({ type, containerId: record.id, podId: record.podId });
  }

  private stateDirOf(id: string): string {
    return path.join(this.config.state, 'containers', id);
  }

  private exitsDir(): string {
    return path.join(this.config.state, 'exits');
  }

  filesOf(id: string, stateDir: string): MonitorFiles {
    return monitorFiles(stateDir, path.join(this.exitsDir(), `${id}.json`));
  }

  private containerDirOf(id: string): string {
    return path.join(this.config.root, 'containers', id);
  }

  /** Layers used by containers' root filesystems and image volumes: image GC never frees them. */
  *layersInUse(): Iterable<string> {
    for (const record of this.store.list()) {
      yield* record.image.layers;
      for (const v of record.imageVolumes ?? []) yield* v.layers;
    }
  }

  /**
   * Start-up reconciliation: `creating` records are rolled back, `removing` ones rolled forward, then
   * whatever no record names is swept away (see sweepOrphans). Containers whose records are whole are
   * left running, their state read from their monitors' files.
   */
  async recover(): Promise<void> {
    await fs.mkdir(path.join(this.config.root, 'containers'), { recursive: true, mode: 0o700 });
    await fs.mkdir(this.exitsDir(), { recursive: true, mode: 0o700 });
    this.watchExits();
    const monitors = await findMonitors(this.config.state);
    const quarantined = (file: string, reason: string) => this.repairs.record('record-quarantined', { file, reason }, 'a container record that does not parse was moved aside');
    for (const record of await this.store.load(quarantined)) {
      const found = monitors.get(record.id) ?? [];
      if (record.phase === 'creating' || record.phase === 'removing') {
        const kind = record.phase === 'creating' ? 'container-rolled-back' : 'container-removal-completed';
        try {
          await this.teardownContainer(record, found);
          await this.store.delete(record);
          this.repairs.record(kind, { container: record.id, name: record.fullName, pod: record.podId }, record.phase === 'creating' ? 'a CreateContainer cut short by a crash was rolled back' : 'a RemoveContainer cut short by a crash was completed');
        } catch (err) {
          this.log.error({ container: record.id, phase: record.phase, error: messageOf(err) }, 'reconciling a container failed; retried at the next start');
        }
        continue;
      }
      await this.refresh(record);
      await this.adoptStarted(record.id);
    }
    await this.sweepOrphans(monitors);
    this.log.info({ containers: this.store.list().length }, 'containers loaded');
  }

  /**
   * A crash between the runtime's start and the record's `running` leaves a created record of a
   * running container (a retried StartContainer would fail on it): the runtime's state decides.
   */
  private async adoptStarted(id: string): Promise<void> {
    const record = this.store.get(id);
    if (!record || record.state !== 'created') return;
    const state = await this.runtimes.get(record.handler).state(id).catch(() => undefined);
    if (state?.status !== 'running') return;
    await this.store.save({ ...record, state: 'running', startedAt: nowNanos() });
    this.repairs.record('container-start-recorded', { container: id }, 'a container started just before a crash is recorded as running');
  }

  /**
   * What a container makes is named from its id: whatever carries an id no record has is left from
   * a crash (or from a berth before write-ahead records) and is removed, each kind counted.
   */
  private async sweepOrphans(monitors: Map<string, ProcessIdentity[]>): Promise<void> {
    const known = (id: string) => this.store.get(id) !== undefined;
    const isId = (n: string) => /^[a-f0-9]{64}$/.test(n);
    const orphans = new Map<string, { kinds: Set<string>; handlers: Set<string> }>();
    const note = (id: string, kind: string, handler?: string) => {
      if (known(id)) return;
      const entry = orphans.get(id) ?? { kinds: new Set<string>(), handlers: new Set<string>() };
      entry.kinds.add(kind);
      if (handler !== undefined) entry.handlers.add(handler);
      orphans.set(id, entry);
    };
    const stateRoot = path.join(this.config.state, 'containers');
    for (const name of await fs.readdir(stateRoot).catch(() => [] as string[])) if (isId(name)) note(name, 'container-orphan-state-dir');
    for (const name of await fs.readdir(path.join(this.config.root, 'containers')).catch(() => [] as string[])) if (isId(name)) note(name, 'container-orphan-dir');
    for (const point of await mountsUnder(stateRoot)) {
      const id = point.slice(stateRoot.length + 1).split('/')[0];
      if (isId(id)) note(id, 'container-orphan-mount');
    }
    for (const runtime of this.runtimes.all()) for (const id of await runtime.containerIds()) note(id, 'container-orphan-runtime-state', runtime.handler);
    for (const id of monitors.keys()) note(id, 'container-orphan-monitor');
    for (const name of await fs.readdir(this.exitsDir()).catch(() => [] as string[])) {
      const id = /^([a-f0-9]{64})\.json$/.exec(name)?.[1];
      if (id) note(id, 'container-orphan-exit-file');
    }
    for (const [id, { kinds, handlers }] of orphans) {
      try {
        await this.teardownOrphan(id, [...handlers], monitors.get(id) ?? []);
        for (const kind of kinds) this.repairs.record(kind, { container: id }, 'removed what a container without a record left');
      } catch (err) {
        this.log.error({ container: id, error: messageOf(err) }, 'removing what a container without a record left failed');
      }
    }
    await this.sweepOrphanCgroups();
  }

  /** Container cgroups below a pod's cgroup that no record names (the pod's own init leaf aside). */
  private async sweepOrphanCgroups(): Promise<void> {
    for (const pod of this.pods.list()) {
      const dir = controllerDir('pids', pod.cgroup) ?? controllerDir('memory', pod.cgroup);
      if (!dir) continue;
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const id = /^(?:berth-)?([a-f0-9]{64})(?:\.scope)?$/.exec(entry.name)?.[1];
        if (!id || id === pod.id || this.store.get(id)) continue;
        const cgroup = `${pod.cgroup}/${entry.name}`.replace(/\/+/g, '/');
        try {
          await destroyCgroup(cgroup, { kill: true });
          this.repairs.record('container-orphan-cgroup', { container: id, pod: pod.id, cgroup }, 'removed a container cgroup no record names');
        } catch (err) {
          this.log.error({ container: id, cgroup, error: messageOf(err) }, 'removing an orphaned container cgroup failed');
        }
      }
    }
  }

  /** Teardown of an id without a record: every runtime that may know it, no cgroup path (the pods' sweep finds those). */
  private async teardownOrphan(id: string, handlers: string[], monitors: ProcessIdentity[]): Promise<void> {
    // `delete --force` kills what is left in the container's cgroup first (runc, crun and berth-runtime alike).
    for (const runtime of handlers.length ? handlers.map((h) => this.runtimes.get(h)) : this.runtimes.all()) await runtime.delete(id, true);
    await this.removeLeftovers(id, this.stateDirOf(id), this.containerDirOf(id), monitors);
  }

  /**
   * Undoes everything a container made, in order, each step tolerating what is already gone, so that
   * it can run again after a crash anywhere in it: the container killed and forgotten by its runtime
   * (which removes its cgroup), its monitors gone, its rootfs unmounted, its dirs and files removed,
   * and its cgroup removed directly when the runtime had no state for it. Used by RemoveContainer, by
   * a failed CreateContainer, and by start-up reconciliation.
   */
  async teardownContainer(record: ContainerRecord, extraMonitors: ProcessIdentity[] = [], phases = new PhaseTimer()): Promise<void> {
    // `delete --force` kills what is left in the container's cgroup first (runc, crun and berth-runtime alike).
    await this.runtimes.get(record.handler).delete(record.id, true);
    phases.mark('runtime');
    failpoint('container.remove.after-runtime-delete');
    const monitors = record.monitor ? [record.monitor, ...extraMonitors.filter((m) => m.pid !== record.monitor!.pid)] : extraMonitors;
    await this.removeLeftovers(record.id, record.stateDir, record.containerDir, monitors);
    phases.mark('files');
    // The runtime removes the cgroup it made; one it never knew of (a crash inside its create) is ours.
    if (record.cgroup) await destroyCgroup(record.cgroup, { kill: true });
    phases.mark('cgroup');
  }

  private async removeLeftovers(id: string, stateDir: string, containerDir: string, monitors: ProcessIdentity[]): Promise<void> {
    await Promise.all(monitors.map((m) => stopMonitor(m)));
    const bundleDir = path.join(stateDir, 'bundle');
    const layout = rootfsLayout(containerDir, bundleDir);
    unmountRootfs(layout);
    await unmountIdmappedLayers(layout);
    await unmountImageVolumes(bundleDir);
    failpoint('container.remove.after-unmount');
    await Promise.all([
      fs.rm(stateDir, { recursive: true, force: true }),
      fs.rm(path.join(this.config.state, 'console', id), { force: true }),
      fs.rm(this.filesOf(id, stateDir).exitFile, { force: true }),
      fs.rm(containerDir, { recursive: true, force: true }),
    ]);
  }

  /**
   * Every monitor renames its exit file into one directory: one inotify watch tells berthd of every
   * exit, so List and Status answer from memory. Nothing polls; what the watch could miss is caught by
   * other events:
   * - an overflowed inotify queue (libuv drops IN_Q_OVERFLOW without a word): the queue can only
   *   overflow with events behind it not yet read, and every event is followed, a second later, by one
   *   readdir of the directory that refreshes any running container whose exit file is there;
   * - a monitor killed before it wrote its exit file: berthd's own monitors are its children, and their
   *   end, reaped on SIGCHLD (util/spawn.ts), refreshes their containers at once; the monitors of an
   *   earlier berthd are not, and are checked by start time every 5 minutes while any still run (the
   *   kubelet's ListContainers every second notices them sooner, by a signal-0 probe).
   */
  private watchExits(): void {
    this.watcher = watch(this.exitsDir(), (_event, name) => {
      const id = typeof name === 'string' ? /^([a-f0-9]{64})\.json$/.exec(name)?.[1] : undefined;
      const record = id ? this.store.get(id) : undefined;
      if (record) void this.refresh(record).catch((err: unknown) => this.log.error({ container: id, error: messageOf(err) }, 'reading an exit file failed'));
      this.reconcileSoon();
    });
    this.watcher.on('error', (err) => this.log.error({ error: messageOf(err) }, 'watching exit files failed'));
    this.stopReaping = onAdoptedExit((pid) => this.monitorEnded(pid));
    this.sweepLater();
  }

  /** A monitor berthd started has ended (and been reaped): its container is brought up to date. */
  private monitorEnded(pid: number): void {
    for (const record of this.store.list()) {
      if (record.monitor?.pid !== pid) continue;
      void this.refresh(record).catch((err: unknown) => this.log.error({ container: record.id, error: messageOf(err) }, 'refreshing a container failed'));
    }
  }

  private reconcileSoon(): void {
    if (this.reconciler || this.closed) return;
    this.reconciler = setTimeout(() => {
      this.reconciler = undefined;
      void this.reconcileExits().catch((err: unknown) => this.log.error({ error: messageOf(err) }, 'reading the exits directory failed'));
    }, EXITS_RECONCILE_DELAY_MS);
    this.reconciler.unref();
  }

  /** Refreshes every running or created container whose exit file is in the exits directory. */
  private async reconcileExits(): Promise<void> {
    const names = new Set(await fs.readdir(this.exitsDir()));
    for (const record of this.store.list()) {
      if ((record.state !== 'running' && record.state !== 'created') || !names.has(`${record.id}.json`)) continue;
      await this.refresh(record).catch((err: unknown) => this.log.error({ container: record.id, error: messageOf(err) }, 'refreshing a container failed'));
    }
  }

  private sweepLater(): void {
    if (this.closed) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      void this.sweep().catch((err: unknown) => this.log.error({ error: messageOf(err) }, 'sweeping containers failed'));
    }, SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /** The safety net: the exits directory read through, and every monitor SIGCHLD cannot report (an
   * earlier berthd's) checked by start time; it runs again only while such monitors remain. */
  private async sweep(): Promise<void> {
    await this.reconcileExits();
    let inherited = 0;
    for (const record of this.store.list()) {
      if (record.phase === 'creating' || (record.state !== 'running' && record.state !== 'created') || !record.monitor) continue;
      if (isAdoptedChild(record.monitor.pid)) continue;
      // The exit files were just read; only a dead monitor needs more.
      if (await isAlive(record.monitor)) {
        inherited++;
        continue;
      }
      const refreshed = await this.refresh(record).catch((err: unknown) => {
        this.log.error({ container: record.id, error: messageOf(err) }, 'refreshing a container failed');
        return record;
      });
      if (refreshed.state === 'running' || refreshed.state === 'created') inherited++;
    }
    if (inherited > 0) this.sweepLater();
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.stopReaping?.();
    clearTimeout(this.sweeper);
    clearTimeout(this.reconciler);
  }

  /**
   * Brings a record up to date with its monitor's files: an exit recorded while berthd looked away,
   * a monitor that died, or a reboot that took the volatile state.
   */
  private async refresh(record: ContainerRecord): Promise<ContainerRecord> {
    if (record.phase === 'creating') return record;
    if (record.state !== 'running' && record.state !== 'created') return record;
    const files = this.filesOf(record.id, record.stateDir);
    const status = await readExit(files.exitFile);
    let exit: ContainerExit | undefined = status ? exitOf(status) : undefined;
    if (!exit && record.monitor && !(await isAlive(record.monitor))) {
      // The monitor writes the exit file and then exits: read again, it may have done both since.
      const late = await readExit(files.exitFile);
      if (late) exit = exitOf(late);
      // Without its monitor nothing supervises the container, holds its stdio or can learn its exit
      // code: it is killed (as CRI-O does when conmon is gone) and reported exited, its log kept.
      else if (record.pid && (await processStartTime(record.pid))) {
        await this.runtimes.get(record.handler).kill(record.id, 'SIGKILL', true).catch((err: unknown) => this.log.warn({ container: record.id, error: messageOf(err) }, 'killing a container whose monitor died failed'));
        this.log.warn({ container: record.id, monitor: record.monitor.pid }, "the container's monitor died: the container was killed");
        exit = { exitCode: 255, reason: 'Error', message: `the container's monitor (pid ${record.monitor.pid}) died; berth killed the container; its exit code is unknown`, finishedAt: nowNanos() };
      } else exit = { exitCode: 255, reason: 'Unknown', message: "the container's monitor is gone (reboot or kill); its exit code is unknown", finishedAt: nowNanos() };
    }
    if (!exit) return record;
    // Merge with the record as it is now: StartContainer may have saved it meanwhile.
    const current = this.store.get(record.id);
    if (!current) return { ...record, state: 'exited', exit };
    if (current.state === 'exited') return current;
    const updated: ContainerRecord = { ...current, state: 'exited', exit };
    await this.store.save(updated);
    return updated;
  }

  private podOf(podId: string): SandboxRecord {
    const pod = this.pods.status(podId);
    if (pod.state !== 'ready') throw new FailedPreconditionError(`pod sandbox ${pod.id} is not ready: containers cannot be created in it`);
    return pod;
  }

  async create(podId: string, spec: ContainerSpec, requestKey: string): Promise<string> {
    const pod = this.podOf(podId);
    const fullName = containerFullName(spec, pod.spec);
    const owner = this.store.ownerOf(fullName);
    if (owner) {
      const existing = this.store.get(owner);
      if (existing && existing.phase !== 'creating' && existing.requestKey === requestKey) return existing.id;
      if (!existing || existing.phase === 'creating') throw new AlreadyExistsError(`container name ${fullName} is being created`);
      throw new AlreadyExistsError(`container name ${fullName} is already used by container ${owner}; remove it first`);
    }
    const id = randomBytes(32).toString('hex');
    if (!this.store.reserve(fullName, id)) throw new AlreadyExistsError(`container name ${fullName} is being created`);
    const phases = new PhaseTimer();
    let intent: ContainerRecord | undefined;
    try {
      const resolved = await this.intentOf(id, fullName, pod, spec, requestKey);
      intent = resolved.intent;
      // Write-ahead: from here on a crash leaves a record that names everything to undo.
      await this.store.save(intent);
      failpoint('container.after-record');
      phases.mark('intent');
      const record = await this.createOnce(intent, pod, resolved.image, resolved.imageConfig, resolved.cdi, phases);
      failpoint('container.before-created');
      await this.store.save(record);
      phases.mark('record');
      this.log.info({ container: id, name: fullName, pod: pod.id, pid: record.pid, ms: phases.result() }, 'container created');
      return id;
    } catch (err) {
      if (intent) {
        try {
          await this.teardownContainer(intent, await this.monitorsOf(intent));
          await this.store.delete(intent);
        } catch (e) {
          // The record stays `creating` (hidden): reconciliation at the next start retries.
          this.log.error({ container: id, error: messageOf(e) }, 'cleanup after a failed CreateContainer failed');
        }
      }
      this.store.release(fullName, id);
      throw err;
    }
  }

  /** A failed create's monitor is known only once startMonitor returned; else it is found by its files. */
  private async monitorsOf(record: ContainerRecord): Promise<ProcessIdentity[]> {
    if (record.monitor) return [];
    return (await findMonitors(this.config.state)).get(record.id) ?? [];
  }

  /** Validation and look-ups, no side effect: the `creating` record written before the first one. */
  private async intentOf(id: string, fullName: string, pod: SandboxRecord, spec: ContainerSpec, requestKey: string) {
    const runtime = this.runtimes.get(pod.spec.runtimeHandler);
    checkUserns(spec, pod);
    // As containerd and CRI-O: a privileged container only in a pod the kubelet made privileged.
    if (spec.process.privileged && pod.spec.privileged === false) {
      throw new InvalidArgumentError(`container ${spec.name} is privileged but its pod is not (linux.security_context.privileged of the pod sandbox)`);
    }
    if (spec.process.mounts.some((m) => m.recursiveReadOnly) && !runtime.features.recursiveReadOnlyMounts) {
      throw new FailedPreconditionError(`runtime handler ${JSON.stringify(runtime.handler)} cannot make recursive read-only mounts (Status lists what each handler can do)`);
    }
    const image = await this.images.find(spec.image);
    if (!image) throw new NotFoundError(`image ${JSON.stringify(spec.image)} not found: pull it first`);
    const imageVolumes = await this.imageVolumesOf(spec);
    const cdi = await resolveCdiDevices(this.config.runtime.cdi_spec_dirs, spec.cdiDevices ?? []);
    const imageConfig = await this.images.configOf(image);
    const missing = missingControllers(spec.process.resources);
    if (missing.length) {
      throw new FailedPreconditionError(`container ${spec.name} needs the cgroup controller${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')}, which this host does not offer to berth`);
    }
    const { path: cgroup } = this.pods.containerCgroup(pod, id);
    const logPath = spec.logPath && pod.spec.logDirectory ? path.join(pod.spec.logDirectory, spec.logPath) : '';
    const body = imageConfigBody(imageConfig);
    const intent: ContainerRecord = {
      id,
      phase: 'creating',
      fullName,
      podId: pod.id,
      spec,
      requestKey,
      handler: runtime.handler,
      image: {
        id: image.id,
        name: image.repoTags[0] ?? spec.image,
        ref: image.repoDigests[0] ?? image.id,
        layers: image.layers.map((l) => l.chainId),
        stopSignal: body.StopSignal ?? '',
      },
      state: 'created',
      createdAt: nowNanos(),
      logPath,
      cgroup,
      stateDir: this.stateDirOf(id),
      containerDir: this.containerDirOf(id),
      ...(imageVolumes.length ? { imageVolumes } : {}),
    };
    return { intent, image, imageConfig, cdi };
  }

  /** The images the container's image volumes name: each must have been pulled (the kubelet pulls first). */
  private async imageVolumesOf(spec: ContainerSpec): Promise<NonNullable<ContainerRecord['imageVolumes']>> {
    const out: NonNullable<ContainerRecord['imageVolumes']> = [];
    for (const [mount, m] of spec.process.mounts.entries()) {
      if (!m.image) continue;
      const image = await this.images.find(m.image.ref);
      if (!image) throw new NotFoundError(`image ${JSON.stringify(m.image.ref)} of the image volume at ${m.containerPath} not found: pull it first`);
      out.push({ mount, id: image.id, layers: image.layers.map((l) => l.chainId) });
    }
    return out;
  }

  /** The side effects of CreateContainer, each named after the record it derives from; undone by teardownContainer. */
  private async createOnce(
    intent: ContainerRecord,
    pod: SandboxRecord,
    image: NonNullable<Awaited<ReturnType<ImageService['find']>>>,
    imageConfig: Awaited<ReturnType<ImageService['configOf']>>,
    cdi: CdiEdits,
    phases: PhaseTimer,
  ): Promise<ContainerRecord> {
    const { id, spec, stateDir, containerDir, logPath } = intent;
    const runtime = this.runtimes.get(intent.handler);
    const target = spec.process.pidNamespace === 'target' ? await this.targetPid(spec.pidTarget) : undefined;
    // makeDirs, not a recursive mkdir: Node reports a full disk there as ENOENT (storage/disk.ts).
    await makeDirs(stateDir, 0o711);
    await makeDirs(containerDir, 0o711);
    const emptyDir = path.join(this.config.root, 'containers', 'empty');
    await makeDirs(emptyDir, 0o755);
    failpoint('container.after-dirs');
    const { cgroupsPath } = this.pods.containerCgroup(pod, id);
    const bundleDir = path.join(stateDir, 'bundle');
    // teardownContainer undoes the bundle, the mount included.
    const bundle = await createBundle(
      {
        id, spec, pod, imageConfig,
        lowerDirs: image.layers.map((l) => this.images.layers.diffDir(l.chainId)),
        imageVolumes: (intent.imageVolumes ?? []).map((v) => ({ mount: v.mount, lowerDirs: v.layers.map((c) => this.images.layers.diffDir(c)) })),
        emptyDir, containerDir, bundleDir, cgroupsPath, minOomScoreAdj: this.minOomScoreAdj, targetPid: target, cdi,
      },
    );
    failpoint('container.after-bundle');

    phases.mark('bundle');
    if (logPath) await makeLogDir(pod.spec.logDirectory, logPath);
    const files = this.filesOf(id, stateDir);
    const runtimeLog = path.join(stateDir, 'runtime.log');
    // Runtimes dial the console socket by path: it lives where the path stays short.
    const consoleSocket = spec.process.tty ? path.join(this.config.state, 'console', id) : undefined;
    if (consoleSocket) await fs.mkdir(path.dirname(consoleSocket), { recursive: true, mode: 0o700 });
    let started;
    try {
      started = await startMonitor({
        files,
        logPath: logPath || '/dev/null',
        command: runtime.createCommand(id, bundleDir, files.containerPidFile, { logFile: runtimeLog, consoleSocket }),
        oomCgroup: controllerDir('memory', intent.cgroup),
        stdin: spec.process.stdin ? { once: spec.stdinOnce } : undefined,
        consoleSocket,
      });
    } catch (err) {
      if (err instanceof CreateFailedError) {
        const detail = (await lastRuntimeError(runtimeLog)) ?? err.message;
        throw new (createFailureClass(detail))(`creating container ${spec.name} with the ${runtime.handler} runtime failed: ${detail}`, { cause: err });
      }
      throw err;
    }
    failpoint('container.after-monitor');
    phases.mark('runtime');
    return {
      ...intent,
      phase: 'created',
      pid: started.containerPid,
      monitor: started.monitor,
      user: bundle.spec.process.user as ContainerRecord['user'],
    };
  }

  private async targetPid(target: string): Promise<number> {
    const record = target ? this.store.resolve(target) : undefined;
    if (!record) throw new NotFoundError(`PID namespace target container ${JSON.stringify(target)} not found`);
    const fresh = await this.refresh(record);
    if (fresh.state !== 'running' || !fresh.pid) throw new FailedPreconditionError(`PID namespace target container ${record.id} is not running`);
    return fresh.pid;
  }

  private find(idOrPrefix: string): ContainerRecord {
    if (!idOrPrefix) throw new InvalidArgumentError('container_id is empty');
    const record = this.resolve(idOrPrefix);
    if (!record) throw new NotFoundError(`container ${JSON.stringify(idOrPrefix)} not found`);
    return record;
  }

  /** A container still `creating` is not one yet (as containerd hides it): no RPC sees it. */
  private resolve(idOrPrefix: string): ContainerRecord | undefined {
    const record = this.store.resolve(idOrPrefix);
    return record && record.phase !== 'creating' ? record : undefined;
  }

  async start(idOrPrefix: string): Promise<void> {
    const { id } = this.find(idOrPrefix);
    await this.locks.run(id, async () => {
      const record = await this.refresh(this.find(id));
      if (record.state === 'running') throw new FailedPreconditionError(`container ${id} is already running`);
      if (record.state !== 'created') throw new FailedPreconditionError(`container ${id} is ${record.state}: only a created container can be started`);
      const runtime = this.runtimes.get(record.handler);
      const phases = new PhaseTimer();
      failpoint('container.start.before-start');
      try {
        await runtime.start(id);
      } catch (err) {
        const exit: ContainerExit = { exitCode: 128, reason: 'StartError', message: messageOf(err), finishedAt: nowNanos() };
        await this.store.save({ ...record, state: 'exited', startedAt: nowNanos(), exit });
        throw err;
      }
      failpoint('container.start.after-start');
      const startedAt = nowNanos();
      phases.mark('runtime');
      // The container may have exited already (and the exit watch recorded it): keep that.
      const latest = this.store.get(id) ?? record;
      await this.store.save({ ...latest, startedAt, state: latest.state === 'created' ? 'running' : latest.state });
      phases.mark('record');
      this.log.info({ container: id, ms: phases.result() }, 'container started');
    });
  }

  /** Waits for the monitor to record the exit; false at the deadline. */
  private async waitExit(record: ContainerRecord, ms: number): Promise<boolean> {
    const exited = await poll(async () => ((await this.refresh(record)).state === 'exited' ? true : undefined), {
      first: 2,
      max: 10,
      deadline: Date.now() + ms,
    });
    return exited ?? false;
  }

  /** Stops a running container: its stop signal, then SIGKILL after the timeout. Idempotent. */
  /**
   * Stops a container. Idempotent, as the CRI asks and critest checks: a container already stopped, or
   * already removed (or never known), is not an error.
   */
  async stop(idOrPrefix: string, timeoutSeconds: number): Promise<void> {
    const found = this.resolve(idOrPrefix);
    if (!found) return;
    await this.locks.run(found.id, () => this.stopLocked(found.id, timeoutSeconds));
  }

  private async stopLocked(id: string, timeoutSeconds: number): Promise<void> {
    const record = await this.refresh(this.find(id));
    if (record.state !== 'running' && record.state !== 'created') return;
    const runtime = this.runtimes.get(record.handler);
    if (record.state === 'running' && timeoutSeconds > 0) {
      await runtime.kill(id, stopSignalOf(record)).catch((err: unknown) => this.log.debug({ container: id, error: messageOf(err) }, 'stop signal not delivered'));
      if (await this.waitExit(record, timeoutSeconds * 1000)) return this.logStopped(id);
    }
    await runtime.kill(id, 'SIGKILL', true).catch((err: unknown) => this.log.debug({ container: id, error: messageOf(err) }, 'SIGKILL not delivered'));
    if (record.state === 'created') {
      // A container that never started has no process to wait for: its init is the runtime's.
      await runtime.delete(id, true);
      if (!(await this.waitExit(record, KILL_GRACE_MS))) {
        await this.store.save({ ...record, state: 'exited', exit: { exitCode: 137, reason: 'Error', message: 'stopped before it was started', finishedAt: nowNanos() } });
      }
      return this.logStopped(id);
    }
    if (!(await this.waitExit(record, KILL_GRACE_MS))) {
      throw new Error(`container ${id} did not exit ${KILL_GRACE_MS / 1000}s after SIGKILL (pid ${record.pid}, perhaps in uninterruptible sleep)`);
    }
    this.logStopped(id);
  }

  private logStopped(id: string): void {
    this.log.info({ container: id }, 'container stopped');
  }

  /**
   * Removes a container: the record is marked `removing` before the first side effect (reconciliation
   * completes a removal a crash cut short), the container is stopped (timeout 0, its exit recorded),
   * torn down, and the record deleted last. Idempotent: an unknown container is not an error.
   */
  async remove(idOrPrefix: string): Promise<void> {
    const found = this.resolve(idOrPrefix);
    if (!found) return;
    await this.locks.run(found.id, async () => {
      let record = this.store.get(found.id);
      if (!record) return;
      const phases = new PhaseTimer();
      if (record.phase !== 'removing') {
        record = { ...record, phase: 'removing' };
        await this.store.save(record);
      }
      phases.mark('intent');
      failpoint('container.remove.after-marking');
      await this.stopLocked(record.id, 0);
      phases.mark('stop');
      await this.teardownContainer(this.store.get(record.id) ?? record, [], phases);
      await this.store.delete(record);
      phases.mark('record');
      this.log.info({ container: record.id, ms: phases.result() }, 'container removed');
    });
    this.locks.forget(found.id);
  }

  /**
   * From memory, as the exit watch keeps it; the disk is read only when the container's monitor is
   * gone (a signal-0 probe: no I/O), which the watch alone would not notice until the next sweep.
   */
  async status(idOrPrefix: string): Promise<ContainerRecord> {
    const record = this.find(idOrPrefix);
    if ((record.state === 'running' || record.state === 'created') && record.monitor && !signalable(record.monitor.pid)) return this.refresh(record);
    return record;
  }

  async list(filter: ContainerFilter = {}): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    const labels = Object.entries(filter.labels ?? {});
    for (const listed of this.store.list()) {
      if (listed.phase === 'creating') continue;
      // Id, pod and labels never change: what they exclude is not probed.
      if (filter.id && !listed.id.startsWith(filter.id)) continue;
      if (filter.podId && !listed.podId.startsWith(filter.podId)) continue;
      if (labels.length && labels.some(([k, v]) => listed.spec.labels[k] !== v)) continue;
      // A monitor gone (signal-0 probe, no I/O) is found here as in ContainerStatus.
      const r = (listed.state === 'running' || listed.state === 'created') && listed.monitor && !signalable(listed.monitor.pid) ? await this.refresh(listed) : listed;
      // State as the exit watch keeps it: listing never touches the disk.
      if (filter.state && r.state !== filter.state) continue;
      out.push(r);
    }
    return out;
  }

  /** StopPodSandbox: every container of the pod is killed (the kubelet has stopped them gracefully). */
  async stopPodContainers(podId: string): Promise<void> {
    await Promise.all(this.ofPod(podId).map((r) => this.stop(r.id, 0)));
  }

  async removePodContainers(podId: string): Promise<void> {
    await Promise.all(this.ofPod(podId).map((r) => this.remove(r.id)));
  }

  private ofPod(podId: string): ContainerRecord[] {
    return this.store.list().filter((r) => r.podId === podId && r.phase !== 'creating');
  }

  async update(idOrPrefix: string, resources: ContainerRequest['resources']): Promise<void> {
    const record = await this.status(idOrPrefix);
    if (record.state !== 'running' && record.state !== 'created') throw new FailedPreconditionError(`container ${record.id} is ${record.state}: its resources cannot be updated`);
    const oci = ociResources(resources);
    await this.runtimes.get(record.handler).update(record.id, oci, record.stateDir);
    const kept = updatedResources(record.spec.process.resources, resources);
    await this.store.save({ ...record, spec: { ...record.spec, process: { ...record.spec.process, resources: kept } } });
  }

  async reopenLog(idOrPrefix: string): Promise<void> {
    const record = await this.status(idOrPrefix);
    if (record.state !== 'running' || !record.monitor || !(await isAlive(record.monitor))) {
      throw new FailedPreconditionError(`container ${record.id} is not running: its log cannot be reopened`);
    }
    reopenLog(record.monitor);
  }

  /**
   * CheckpointContainer: the container (NotFound), the archive's path (absolute), then CRIU's verdict on
   * this host (checkpoint.ts). berth writes no checkpoint yet, so the answer is UNIMPLEMENTED with the reason.
   */
  async checkpoint(idOrPrefix: string, location: string): Promise<never> {
    const record = await this.status(idOrPrefix);
    if (!path.isAbsolute(location)) throw new InvalidArgumentError(`CheckpointContainer: location ${JSON.stringify(location)} is not an absolute path`);
    if (record.state !== 'running') throw new FailedPreconditionError(`container ${record.id} is not running (${record.state}): only a running container can be checkpointed`);
    const criu = await probeCriu();
    if (!criu.usable) throw new UnimplementedError(`CheckpointContainer needs CRIU, and ${criu.detail}`);
    throw new UnimplementedError(`CheckpointContainer: berth does not write checkpoints yet (${criu.detail} works on this host)`);
  }

  async execSync(idOrPrefix: string, cmd: string[], timeoutSeconds: number): Promise<ExecResult> {
    if (cmd.length === 0) throw new InvalidArgumentError('ExecSync: cmd is empty');
    const record = await this.status(idOrPrefix);
    if (record.state !== 'running') throw new FailedPreconditionError(`container ${record.id} is not running (${record.state})`);
    return execSync(this.runtimes.get(record.handler), record.id, path.join(record.stateDir, 'bundle'), record.stateDir, cmd, timeoutSeconds);
  }
}

/**
 * Makes the directory of a container's log file and checks that it really is below the pod's log directory:
 * log_path is clean and relative (the handler checks), but a symlink inside the directory could still lead
 * out of it. (The monitor opens the file itself without following a symlink.)
 */
async function makeLogDir(logDirectory: string, logPath: string): Promise<void> {
  await fs.mkdir(path.dirname(logPath), { recursive: true, mode: 0o755 });
  const [base, dir] = await Promise.all([fs.realpath(logDirectory), fs.realpath(path.dirname(logPath))]);
  if (dir !== base && !dir.startsWith(`${base === '/' ? '' : base}/`)) {
    throw new InvalidArgumentError(`log_path ${JSON.stringify(path.relative(logDirectory, logPath))} leads out of the pod's log directory ${logDirectory} (to ${dir})`);
  }
}
