// Everything a pod makes is named from its id (and, for the cgroup, its cgroup_parent), so it can be
// found and undone without a record of what was finished: after a failed RunPodSandbox, on stop and
// remove, and at start-up after a crash. teardownPod is one list of named steps, each tolerating "already
// gone"; every step runs even when an earlier one failed, and the failures are reported together.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CgroupDriver } from '../cgroups/driver';
import { messageOf } from '../errors';
import { isNativeError, MNT_DETACH, umount2 } from '../native';
import type { NetworkManager } from '../network/network-manager';
import type { PhaseTimer } from '../util/phase-timer';
import { findHelpers, isAlive, processNamed, type ProcessIdentity } from '../util/process';
import { unpin } from './namespaces';
import { stopPodInit } from './pod-init';
import type { SandboxSpec } from './sandbox';

export const NS_KINDS = ['net', 'uts', 'ipc', 'pid', 'user'] as const;
export type NsKind = (typeof NS_KINDS)[number];

/** The names of everything berth makes for pod `id` under the state dir. */
export interface PodNames {
  stateDir: string;
  shm: string;
  initPidFile: string;
  pins: Record<NsKind, string>;
}

export function podNames(state: string, id: string): PodNames {
  const stateDir = path.join(state, 'pods', id);
  return {
    stateDir,
    shm: path.join(stateDir, 'shm'),
    initPidFile: path.join(stateDir, 'init.pid'),
    pins: Object.fromEntries(NS_KINDS.map((kind) => [kind, path.join(state, 'ns', kind, id)])) as Record<NsKind, string>,
  };
}

export const TEARDOWN_STEPS = ['kill-init', 'cni-del', 'unpin-net', 'unpin-others', 'unmount-shm', 'remove-state-dir', 'remove-cgroup'] as const;
export type TeardownStep = (typeof TEARDOWN_STEPS)[number];
/** What StopPodSandbox undoes: the pod's processes and its network. The rest goes with RemovePodSandbox. */
export const STOP_STEPS: readonly TeardownStep[] = ['kill-init', 'cni-del', 'unpin-net'];

export interface TeardownOptions {
  steps?: readonly TeardownStep[];
  /** The init as the record knows it (PID and start time). */
  init?: ProcessIdentity;
  /** berth-init processes found by a /proc scan (start-up), each already identified as this pod's. */
  inits?: readonly ProcessIdentity[];
  /** The network the ADD used, when known (else found in the CNI cache, else the configured one). */
  networkName?: string;
  /** Called between steps (failpoints). */
  after?: (step: TeardownStep) => void;
  /** Times each step, for the caller's log line. */
  phases?: PhaseTimer;
}

/** The live berth-init whose --pid-file is `pidFile`, or undefined: a reused PID is never taken for it. */
export async function identifyInit(pid: number, pidFile: string): Promise<ProcessIdentity | undefined> {
  const p = await processNamed(pid, 'berth-init');
  const i = p ? p.argv.indexOf('--pid-file') : -1;
  return p && i >= 0 && p.argv[i + 1] === pidFile ? { pid, startTime: p.startTime } : undefined;
}

/** Every live berth-init of a pod under `state`, by pod id (from its --pid-file argument). */
export function scanInits(state: string): Promise<Map<string, ProcessIdentity[]>> {
  return findHelpers('berth-init', path.join(state, 'pods'));
}

export class PodTeardown {
  constructor(
    private readonly state: string,
    private readonly network: NetworkManager,
    private readonly cgroups: CgroupDriver,
    private readonly log: Logger,
  ) {}

  /** Undoes the named steps (all by default) for pod `id`; `spec` is undefined for an orphan. */
  async run(id: string, spec: SandboxSpec | undefined, opts: TeardownOptions = {}): Promise<void> {
    const names = podNames(this.state, id);
    const errors: string[] = [];
    for (const step of opts.steps ?? TEARDOWN_STEPS) {
      try {
        await this.step(step, id, spec, names, opts);
      } catch (err) {
        errors.push(`${step}: ${messageOf(err)}`);
        this.log.error({ pod: id, step, error: messageOf(err) }, 'pod teardown step failed');
      }
      opts.phases?.mark(step);
      opts.after?.(step);
    }
    if (errors.length) throw new Error(`tearing down pod ${id}: ${errors.join('; ')}`);
  }

  private async step(step: TeardownStep, id: string, spec: SandboxSpec | undefined, names: PodNames, opts: TeardownOptions): Promise<void> {
    switch (step) {
      case 'kill-init': {
        const candidates = [...(opts.init ? [opts.init] : []), ...(opts.inits ?? [])];
        const fromFile = Number((await fs.readFile(names.initPidFile, 'utf8').catch(() => '')).trim());
        if (fromFile > 0) {
          const found = await identifyInit(fromFile, names.initPidFile);
          if (found) candidates.push(found);
        }
        for (const init of candidates) if (await isAlive(init)) await stopPodInit(init);
        return;
      }
      case 'cni-del':
        if (spec?.namespaces.network === 'node') return;
        return this.network.detach(opts.networkName, {
          podId: id,
          netns: await netnsArg(names.pins.net),
          name: spec?.name ?? '',
          namespace: spec?.namespace ?? '',
          uid: spec?.uid ?? '',
          portMappings: spec?.portMappings ?? [],
        });
      case 'unpin-net':
        return unpin(names.pins.net);
      case 'unpin-others':
        // The user namespace last: the others belong to it.
        for (const kind of ['uts', 'ipc', 'pid', 'user'] as const) await unpin(names.pins[kind]);
        return;
      case 'unmount-shm':
        try {
          umount2(names.shm, MNT_DETACH);
        } catch (err) {
          if (!isNativeError(err, 'EINVAL') && !isNativeError(err, 'ENOENT')) throw err;
        }
        return;
      case 'remove-state-dir':
        return fs.rm(names.stateDir, { recursive: true, force: true });
      case 'remove-cgroup':
        return this.cgroups.removePod(id, spec?.cgroupParent ?? '');
    }
  }
}

let nsfsDev: number | undefined;

/**
 * The netns path for CNI DEL: the pin when it is a namespace; the path as well when it is gone (plugins
 * tolerate a missing netns on DEL); empty when a file is there but no namespace is mounted on it (a
 * crash between berth-pinns making the file and mounting it), which plugins would refuse.
 */
async function netnsArg(pin: string): Promise<string> {
  const st = await fs.stat(pin).catch(() => undefined);
  if (!st) return pin;
  nsfsDev ??= (await fs.stat('/proc/self/ns/net')).dev;
  return st.dev === nsfsDev ? pin : '';
}
