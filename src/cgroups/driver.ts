// The cgroup drivers behind one interface (DESIGN.md, "cgroups"): where a pod's and a container's
// cgroups are, who makes them, and how they go. Every name derives from the pod or container id.
//
// A pod's own processes (its PID namespace's init) never live in the pod cgroup itself but in a leaf
// of their own beside the containers', because on cgroup v2 a cgroup whose children use controllers may
// hold no processes (the no-internal-processes rule): containerd's pause container sits the same way.
import fs from 'node:fs';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../errors';
import { absoluteCleanPath } from '../util/path-rules';
import { createCgroup, destroyCgroup } from './cgroupfs';
import { expandSlice, sliceOfParent } from './slice';
import { SystemdManager, type UnitProperty } from './systemd-bus';
import { cgroupLayout, cgroupRoots } from './layout';

export type CgroupDriverName = 'cgroupfs' | 'systemd';

export interface PodCgroup {
  /** The pod cgroup's path below the hierarchy roots (stats read it). */
  path: string;
  /** Whether berth made it (and so removes it); the kubelet's cgroup_parent is the kubelet's. */
  owned: boolean;
}

export interface ContainerCgroup {
  /** linux.cgroupsPath of the container's OCI spec, in the driver's form. */
  cgroupsPath: string;
  /** The container cgroup's path below the hierarchy roots. */
  path: string;
}

export interface CgroupDriver {
  readonly name: CgroupDriverName;
  /** Global flags every runtime command gets (runc's CLI). */
  readonly runtimeArgs: readonly string[];
  /** Throws InvalidArgumentError for a cgroup_parent this driver cannot use. */
  validateParent(cgroupParent: string): void;
  pod(podId: string, cgroupParent: string): PodCgroup;
  createPod(podId: string, cgroupParent: string): Promise<void>;
  /**
   * Prepares the leaf cgroup of the pod's init where the driver can make it beforehand, and returns the
   * berth-init arguments that start the init in it (it joins by itself: no global cgroup lock, see
   * native/init). Empty when the init is placed after it started (placeInit).
   */
  prepareInit(podId: string, cgroupParent: string): Promise<string[]>;
  /** Puts the pod's init into its own leaf cgroup, unless prepareInit's arguments have put it there. */
  placeInit(podId: string, cgroupParent: string, pid: number): Promise<void>;
  /** Removes the init's leaf and, when berth made it, the pod cgroup, killing anything left inside. */
  removePod(podId: string, cgroupParent: string): Promise<void>;
  container(podId: string, cgroupParent: string, containerId: string): ContainerCgroup;
}

const join = (...parts: string[]): string => parts.join('/').replace(/\/+/g, '/');

export function validateCgroupPath(cgroup: string): string {
  if (cgroup.includes('\n')) throw new InvalidArgumentError(`cgroup_parent ${JSON.stringify(cgroup)} contains a newline`);
  return absoluteCleanPath('cgroup_parent', cgroup).replace(/(.)\/$/, '$1');
}

/** Directories under /sys/fs/cgroup: the kubelet's path, else /berth/<pod id>; containers below the pod. */
export class CgroupfsDriver implements CgroupDriver {
  readonly name = 'cgroupfs';
  readonly runtimeArgs = [];

  validateParent(cgroupParent: string): void {
    if (cgroupParent) validateCgroupPath(cgroupParent);
  }

  pod(podId: string, cgroupParent: string): PodCgroup {
    return cgroupParent ? { path: validateCgroupPath(cgroupParent), owned: false } : { path: `/berth/${podId}`, owned: true };
  }

  async createPod(podId: string, cgroupParent: string): Promise<void> {
    await createCgroup(this.pod(podId, cgroupParent).path);
  }

  async prepareInit(podId: string, cgroupParent: string): Promise<string[]> {
    const leaf = join(this.pod(podId, cgroupParent).path, podId);
    await createCgroup(leaf);
    const { unified } = cgroupLayout();
    return cgroupRoots().flatMap((root) => [unified ? '--cgroup-v2' : '--cgroup-v1', join(root, leaf)]);
  }

  async placeInit(): Promise<void> {
    // berth-init started in its leaf (prepareInit).
  }

  async removePod(podId: string, cgroupParent: string): Promise<void> {
    const pod = this.pod(podId, cgroupParent);
    await destroyCgroup(join(pod.path, podId), { kill: true });
    if (pod.owned) await destroyCgroup(pod.path, { kill: true });
  }

  container(podId: string, cgroupParent: string, containerId: string): ContainerCgroup {
    const path = join(this.pod(podId, cgroupParent).path, containerId);
    return { cgroupsPath: path, path };
  }
}

/** The unit prefix of berth's scopes: berth-<id>.scope, as containerd's cri-containerd-<id>.scope. */
const UNIT_PREFIX = 'berth';

/**
 * systemd owns the tree: the kubelet's pod slice (or berth-pod<id>.slice under berth.slice), the pod's
 * init in the transient scope berth-<pod id>.scope, containers in berth-<id>.scope made by the runtime
 * (runc's --systemd-cgroup, cgroupsPath "slice:berth:<id>").
 */
export class SystemdDriver implements CgroupDriver {
  readonly name = 'systemd';
  readonly runtimeArgs = ['--systemd-cgroup'];

  constructor(private readonly manager: SystemdManager) {}

  validateParent(cgroupParent: string): void {
    if (cgroupParent) sliceOfParent(cgroupParent);
  }

  private slice(podId: string, cgroupParent: string): string {
    return cgroupParent ? sliceOfParent(cgroupParent) : `${UNIT_PREFIX}-pod${podId}.slice`;
  }

  pod(podId: string, cgroupParent: string): PodCgroup {
    return { path: expandSlice(this.slice(podId, cgroupParent)), owned: !cgroupParent };
  }

  async createPod(podId: string, cgroupParent: string): Promise<void> {
    if (cgroupParent) return; // the kubelet made its slice
    await this.manager.startTransientUnit(this.slice(podId, ''), [['Description', ['s', `berth pod ${podId}`]]]);
  }

  async prepareInit(): Promise<string[]> {
    return []; // systemd makes the init's scope around its PID (placeInit)
  }

  async placeInit(podId: string, cgroupParent: string, pid: number): Promise<void> {
    const properties: UnitProperty[] = [
      ['Description', ['s', `berth pod ${podId} init`]],
      ['Slice', ['s', this.slice(podId, cgroupParent)]],
      ['PIDs', ['au', [pid]]],
      ['DefaultDependencies', ['b', false]],
    ];
    await this.manager.startTransientUnit(`${UNIT_PREFIX}-${podId}.scope`, properties);
  }

  async removePod(podId: string, cgroupParent: string): Promise<void> {
    const pod = this.pod(podId, cgroupParent);
    await this.manager.stopUnit(`${UNIT_PREFIX}-${podId}.scope`);
    await destroyCgroup(join(pod.path, `${UNIT_PREFIX}-${podId}.scope`), { kill: true });
    if (pod.owned) await this.manager.stopUnit(this.slice(podId, cgroupParent));
  }

  container(podId: string, cgroupParent: string, containerId: string): ContainerCgroup {
    const slice = this.slice(podId, cgroupParent);
    return { cgroupsPath: `${slice}:${UNIT_PREFIX}:${containerId}`, path: join(expandSlice(slice), `${UNIT_PREFIX}-${containerId}.scope`) };
  }
}

/** The configured driver; the systemd one refuses a host without systemd or without the unified hierarchy. */
export function createCgroupDriver(name: CgroupDriverName, log: Logger): CgroupDriver {
  if (name === 'cgroupfs') return new CgroupfsDriver();
  if (!fs.existsSync('/run/systemd/system')) throw new Error('cgroup_driver = "systemd" needs systemd as the init system (/run/systemd/system is missing); use "cgroupfs"');
  if (!cgroupLayout().unified) throw new Error('cgroup_driver = "systemd" is supported on cgroup v2 (the unified hierarchy) only; this host has v1 controllers; use "cgroupfs"');
  return new SystemdDriver(new SystemdManager(log.child({ module: 'systemd' })));
}
