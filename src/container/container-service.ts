// Containers: create, start, stop, remove, status, list, update, reopen log, exec. berthd never holds
// a container's stdio or waits on its process: each container has a berth-monitor that outlives
// berthd, and berthd reads the monitor's files to learn what happened while it was away.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError, messageOf } from '../errors';
import type { ImageService } from '../image/image-service';
import type { UsageSource } from '../image/gc';
import { readExit, reopenLog, startMonitor, monitorFiles, CreateFailedError, type ExitStatus, type MonitorFiles } from '../monitor/monitor';
import { lastRuntimeError, type RuntimeRegistry } from '../oci/runtime';
import { controllerDir, missingControllers } from '../cgroups/layout';
import type { PodContainerHooks, PodService } from '../pod/pod-service';
import type { SandboxRecord } from '../pod/sandbox';
import { RecordStore } from '../state/record-store';
import { rootfsLayout, unmountRootfs } from '../storage/rootfs';
import { KeyedMutex } from '../util/mutex';
import { rollBack, type Undo } from '../util/undo';
import { PhaseTimer } from '../util/phase-timer';
import { isAlive, processStartTime } from '../util/process';
import { createBundle, imageConfigBody } from './bundle';
import { containerFullName, nowNanos, rfc3339ToNanos, type ContainerExit, type ContainerRecord, type ContainerSpec, type ContainerState } from './container';
import { execSync, type ExecResult } from './exec-sync';
import { ociResources, updatedResources, type ContainerRequest } from './oci-spec';
import { poll } from '../util/poll';

export interface ContainerFilter {
  id?: string;
  podId?: string;
  state?: ContainerState;
  labels?: Record<string, string>;
}

/** How long a container may take to die after SIGKILL before StopContainer reports it. */
const KILL_GRACE_MS = 10_000;

/** How often every container is checked against its monitor's files, besides the exit watch. */
const SWEEP_INTERVAL_MS = 10_000;

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
  return InvalidArgumentError;
}

export class ContainerService implements UsageSource, PodContainerHooks {
  private readonly store: RecordStore<ContainerRecord>;
  private readonly locks = new KeyedMutex();
  private readonly minOomScoreAdj = ownOomScoreAdj();
  private watcher: FSWatcher | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: BerthConfig,
    private readonly pods: PodService,
    private readonly images: ImageService,
    private readonly runtimes: RuntimeRegistry,
    private readonly log: Logger,
  ) {
    this.store = new RecordStore<ContainerRecord>(path.join(config.root, 'containers'));
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

  /** Layers used by containers' root filesystems: image GC never frees them. */
  *layersInUse(): Iterable<string> {
    for (const record of this.store.list()) yield* record.image.layers;
  }

  async recover(): Promise<void> {
    await fs.mkdir(path.join(this.config.root, 'containers'), { recursive: true, mode: 0o700 });
    await fs.mkdir(this.exitsDir(), { recursive: true, mode: 0o700 });
    this.watchExits();
    for (const record of await this.store.load()) await this.refresh(record);
    this.log.info({ containers: this.store.list().length }, 'containers loaded');
  }

  /**
   * Every monitor renames its exit file into one directory: one inotify watch tells berthd of every
   * exit, so List and Status answer from memory. A sweep catches what a watch could miss (an
   * overflowed queue, a monitor killed before it wrote anything).
   */
  private watchExits(): void {
    this.watcher = watch(this.exitsDir(), (_event, name) => {
      const id = typeof name === 'string' ? /^([a-f0-9]{64})\.json$/.exec(name)?.[1] : undefined;
      const record = id ? this.store.get(id) : undefined;
      if (record) void this.refresh(record).catch((err: unknown) => this.log.error({ container: id, error: messageOf(err) }, 'reading an exit file failed'));
    });
    this.watcher.on('error', (err) => this.log.error({ error: messageOf(err) }, 'watching exit files failed'));
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  private async sweep(): Promise<void> {
    for (const record of this.store.list()) {
      await this.refresh(record).catch((err: unknown) => this.log.error({ container: record.id, error: messageOf(err) }, 'refreshing a container failed'));
    }
  }

  close(): void {
    this.watcher?.close();
    if (this.sweeper) clearInterval(this.sweeper);
  }

  /**
   * Brings a record up to date with its monitor's files: an exit recorded while berthd looked away,
   * a monitor that died, or a reboot that took the volatile state.
   */
  private async refresh(record: ContainerRecord): Promise<ContainerRecord> {
    if (record.state !== 'running' && record.state !== 'created') return record;
    const files = this.filesOf(record.id, record.stateDir);
    const status = await readExit(files.exitFile);
    let exit: ContainerExit | undefined = status ? exitOf(status) : undefined;
    if (!exit && record.monitor && !(await isAlive(record.monitor))) {
      // The monitor writes the exit file and then exits: read again, it may have done both since.
      const late = await readExit(files.exitFile);
      if (late) exit = exitOf(late);
      // Without its monitor nobody can learn the exit code; a container still running keeps its state.
      else if (record.pid && (await processStartTime(record.pid))) return record;
      else exit = { exitCode: 255, reason: 'Unknown', message: "the container's monitor is gone (reboot or kill); its exit code is unknown", finishedAt: nowNanos() };
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
      if (existing && existing.requestKey === requestKey) return existing.id;
      throw new AlreadyExistsError(`container name ${fullName} is already used by container ${owner}; remove it first`);
    }
    const id = randomBytes(32).toString('hex');
    if (!this.store.reserve(fullName, id)) throw new AlreadyExistsError(`container name ${fullName} is being created`);
    const undo: Undo[] = [];
    const phases = new PhaseTimer();
    try {
      const record = await this.createOnce(id, fullName, pod, spec, requestKey, undo, phases);
      await this.store.save(record);
      phases.mark('record');
      this.log.info({ container: id, name: fullName, pod: pod.id, pid: record.pid, ms: phases.result() }, 'container created');
      return id;
    } catch (err) {
      await rollBack(undo, (e) => this.log.error({ container: id, error: messageOf(e) }, 'cleanup after a failed CreateContainer failed'));
      this.store.release(fullName, id);
      throw err;
    }
  }

  private async createOnce(id: string, fullName: string, pod: SandboxRecord, spec: ContainerSpec, requestKey: string, undo: Undo[], phases: PhaseTimer): Promise<ContainerRecord> {
    const runtime = this.runtimes.get(pod.spec.runtimeHandler);
    const image = await this.images.find(spec.image);
    if (!image) throw new NotFoundError(`image ${JSON.stringify(spec.image)} not found: pull it first`);
    const imageConfig = await this.images.configOf(image);
    const stateDir = this.stateDirOf(id);
    const containerDir = this.containerDirOf(id);
    await fs.mkdir(stateDir, { recursive: true, mode: 0o711 });
    undo.push(() => fs.rm(stateDir, { recursive: true, force: true }));
    await fs.mkdir(containerDir, { recursive: true, mode: 0o711 });
    undo.push(() => fs.rm(containerDir, { recursive: true, force: true }));

    const emptyDir = path.join(this.config.root, 'containers', 'empty');
    await fs.mkdir(emptyDir, { recursive: true, mode: 0o755 });
    const missing = missingControllers(spec.process.resources);
    if (missing.length) {
      throw new FailedPreconditionError(`container ${spec.name} needs the cgroup controller${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')}, which this host does not offer to berth`);
    }
    const { cgroupsPath, path: cgroup } = this.pods.containerCgroup(pod, id);
    const bundleDir = path.join(stateDir, 'bundle');
    const target = spec.process.pidNamespace === 'target' ? await this.targetPid(spec.pidTarget) : undefined;
    const bundle = await createBundle(
      {
        id, spec, pod, imageConfig,
        lowerDirs: image.layers.map((l) => this.images.layers.diffDir(l.chainId)),
        emptyDir, containerDir, bundleDir, cgroupsPath, minOomScoreAdj: this.minOomScoreAdj, targetPid: target,
      },
      undo,
    );

    phases.mark('bundle');
    const logPath = spec.logPath && pod.spec.logDirectory ? path.join(pod.spec.logDirectory, spec.logPath) : '';
    if (logPath) await fs.mkdir(path.dirname(logPath), { recursive: true, mode: 0o755 });
    const files = this.filesOf(id, stateDir);
    undo.push(() => fs.rm(files.exitFile, { force: true }));
    const runtimeLog = path.join(stateDir, 'runtime.log');
    // Runtimes dial the console socket by path: it lives where the path stays short.
    const consoleSocket = spec.process.tty ? path.join(this.config.state, 'console', id) : undefined;
    if (consoleSocket) {
      await fs.mkdir(path.dirname(consoleSocket), { recursive: true, mode: 0o700 });
      undo.push(() => fs.rm(consoleSocket, { force: true }));
    }
    let started;
    try {
      started = await startMonitor({
        files,
        logPath: logPath || '/dev/null',
        command: runtime.createCommand(id, bundleDir, files.containerPidFile, { logFile: runtimeLog, consoleSocket }),
        oomCgroup: controllerDir('memory', cgroup),
        stdin: spec.process.stdin ? { once: spec.stdinOnce } : undefined,
        consoleSocket,
      });
    } catch (err) {
      await runtime.delete(id, true).catch(() => undefined);
      if (err instanceof CreateFailedError) {
        const detail = (await lastRuntimeError(runtimeLog)) ?? err.message;
        throw new (createFailureClass(detail))(`creating container ${spec.name} with the ${runtime.handler} runtime failed: ${detail}`, { cause: err });
      }
      throw err;
    }
    undo.push(() => runtime.delete(id, true));
    phases.mark('runtime');
    const body = imageConfigBody(imageConfig);
    return {
      id,
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
      pid: started.containerPid,
      monitor: started.monitor,
      user: bundle.spec.process.user as ContainerRecord['user'],
      logPath,
      cgroup,
      stateDir,
      containerDir,
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
    const record = this.store.resolve(idOrPrefix);
    if (!record) throw new NotFoundError(`container ${JSON.stringify(idOrPrefix)} not found`);
    return record;
  }

  async start(idOrPrefix: string): Promise<void> {
    const { id } = this.find(idOrPrefix);
    await this.locks.run(id, async () => {
      const record = await this.refresh(this.find(id));
      if (record.state === 'running') throw new FailedPreconditionError(`container ${id} is already running`);
      if (record.state !== 'created') throw new FailedPreconditionError(`container ${id} is ${record.state}: only a created container can be started`);
      const runtime = this.runtimes.get(record.handler);
      const phases = new PhaseTimer();
      try {
        await runtime.start(id);
      } catch (err) {
        const exit: ContainerExit = { exitCode: 128, reason: 'StartError', message: messageOf(err), finishedAt: nowNanos() };
        await this.store.save({ ...record, state: 'exited', startedAt: nowNanos(), exit });
        throw err;
      }
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
  async stop(idOrPrefix: string, timeoutSeconds: number): Promise<void> {
    const found = this.store.resolve(idOrPrefix);
    if (!found) throw new NotFoundError(`container ${JSON.stringify(idOrPrefix)} not found`);
    await this.locks.run(found.id, () => this.stopLocked(found.id, timeoutSeconds));
  }

  private async stopLocked(id: string, timeoutSeconds: number): Promise<void> {
    const record = await this.refresh(this.find(id));
    if (record.state !== 'running' && record.state !== 'created') return;
    const runtime = this.runtimes.get(record.handler);
    if (record.state === 'running' && timeoutSeconds > 0) {
      const signal = record.spec.stopSignal || record.image.stopSignal || 'SIGTERM';
      await runtime.kill(id, signal).catch((err: unknown) => this.log.debug({ container: id, error: messageOf(err) }, 'stop signal not delivered'));
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

  /** Removes a container, stopping it first. Idempotent: an unknown container is not an error. */
  async remove(idOrPrefix: string): Promise<void> {
    const found = this.store.resolve(idOrPrefix);
    if (!found) return;
    await this.locks.run(found.id, async () => {
      const record = this.store.get(found.id);
      if (!record) return;
      await this.stopLocked(record.id, 0);
      await this.runtimes.get(record.handler).delete(record.id, true);
      await this.waitMonitorGone(record);
      unmountRootfs(rootfsLayout(record.containerDir, path.join(record.stateDir, 'bundle')));
      await fs.rm(record.stateDir, { recursive: true, force: true });
      await fs.rm(path.join(this.config.state, 'console', record.id), { force: true });
      await fs.rm(this.filesOf(record.id, record.stateDir).exitFile, { force: true });
      await fs.rm(record.containerDir, { recursive: true, force: true });
      await this.store.delete(record);
      this.log.info({ container: record.id }, 'container removed');
    });
    this.locks.forget(found.id);
  }

  /** The monitor exits once the container's output is drained; it is killed if it lingers. */
  private async waitMonitorGone(record: ContainerRecord): Promise<void> {
    if (!record.monitor) return;
    for (let i = 0; i < 100 && (await isAlive(record.monitor)); i++) await sleep(10);
    if (await isAlive(record.monitor)) {
      try {
        process.kill(record.monitor.pid, 'SIGKILL');
      } catch {
        // gone in between
      }
    }
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
    for (const r of this.store.list()) {
      if (filter.id && !r.id.startsWith(filter.id)) continue;
      if (filter.podId && !r.podId.startsWith(filter.podId)) continue;
      if (Object.entries(filter.labels ?? {}).some(([k, v]) => r.spec.labels[k] !== v)) continue;
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
    return this.store.list().filter((r) => r.podId === podId);
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

  async execSync(idOrPrefix: string, cmd: string[], timeoutSeconds: number): Promise<ExecResult> {
    if (cmd.length === 0) throw new InvalidArgumentError('ExecSync: cmd is empty');
    const record = await this.status(idOrPrefix);
    if (record.state !== 'running') throw new FailedPreconditionError(`container ${record.id} is not running (${record.state})`);
    return execSync(this.runtimes.get(record.handler), record.id, path.join(record.stateDir, 'bundle'), record.stateDir, cmd, timeoutSeconds);
  }
}
