// AppArmor for containers, where the host runs it. The kubelet asks for the runtime default (or nothing,
// which is the same), Unconfined, or a profile loaded on the node by name. berth's runtime default is its
// own profile, berth-default, loaded with apparmor_parser the first time a container needs it (and again
// whenever it is found unloaded). A privileged container, like containerd's, runs unconfined unless it names
// a profile. A profile that cannot be applied is an error, never a container that runs unconfined; on a host
// without AppArmor the runtime default is no profile (checkConfinement refuses a named one there).
import fs from 'node:fs/promises';
import { FailedPreconditionError } from '../errors';
import { hostLsms } from '../util/host-lsm';
import { runCommand } from '../util/spawn';

export type AppArmorRequest = { kind: 'runtime-default' } | { kind: 'unconfined' } | { kind: 'localhost'; profile: string };

export const DEFAULT_PROFILE = 'berth-default';
const PARSER = '/usr/sbin/apparmor_parser';
const LOADED_PROFILES = '/sys/kernel/security/apparmor/profiles';

/**
 * What a container may do: files, network, capabilities (as many as its bounding set keeps), signals and
 * ptrace among its own kind; what it may not, whatever its capabilities: mount, the kernel's memory and
 * trigger files, the host-wide kernel knobs, firmware, security and debug filesystems, pinned BPF objects.
 */
export const DEFAULT_PROFILE_TEXT = `profile ${DEFAULT_PROFILE} flags=(attach_disconnected,mediate_deleted) {
  file,
  network,
  capability,
  unix,
  umount,
  signal (receive) peer=unconfined,
  signal (send,receive) peer=${DEFAULT_PROFILE},
  ptrace (trace,read,tracedby,readby) peer=${DEFAULT_PROFILE},

  deny mount,
  deny /proc/sysrq-trigger rwklx,
  deny /proc/kcore rwklx,
  deny /proc/kmem rwklx,
  deny /proc/mem rwklx,
  deny /proc/sys/kernel/core_pattern w,
  deny /proc/sys/kernel/modprobe w,
  deny /proc/sys/vm/** w,
  deny /proc/sys/fs/** w,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/security/** rwklx,
  deny /sys/kernel/debug/** rwklx,
  deny /sys/fs/bpf/** rwklx,
}
`;

/** Whether a profile of that name is loaded (in any mode), from the kernel's list. */
async function isLoaded(name: string): Promise<boolean> {
  const text = await fs.readFile(LOADED_PROFILES, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new FailedPreconditionError(`AppArmor is enabled but its profiles cannot be listed (${LOADED_PROFILES}: ${err.code ?? err.message}; is securityfs mounted?)`);
  });
  return text.split('\n').some((line) => line.slice(0, line.lastIndexOf(' (')) === name);
}

let loading: Promise<void> | undefined;

/** Loads (or replaces) berth-default; concurrent creates share one load. */
async function ensureDefaultLoaded(): Promise<void> {
  if (await isLoaded(DEFAULT_PROFILE)) return;
  loading ??= (async () => {
    const end = await runCommand([PARSER, '-K', '-r'], { input: DEFAULT_PROFILE_TEXT, timeoutMs: 60_000 }).catch((err: Error) => {
      throw new FailedPreconditionError(`AppArmor is enabled but ${PARSER} cannot run (the Debian package apparmor): ${err.message}`);
    });
    if (end.code !== 0) throw new FailedPreconditionError(`loading AppArmor profile ${DEFAULT_PROFILE} failed: ${end.stderr.trim() || `exit ${end.code}`}`);
  })().finally(() => {
    loading = undefined;
  });
  await loading;
}

/** The profile a container execs into (process.apparmorProfile), or undefined for none. */
export async function appArmorProfileFor(req: AppArmorRequest, privileged: boolean): Promise<string | undefined> {
  if (!hostLsms().apparmor || req.kind === 'unconfined') return undefined;
  if (req.kind === 'localhost') {
    if (!(await isLoaded(req.profile))) throw new FailedPreconditionError(`AppArmor profile ${JSON.stringify(req.profile)} is not loaded on this node`);
    return req.profile;
  }
  if (privileged) return undefined;
  await ensureDefaultLoaded();
  return DEFAULT_PROFILE;
}
