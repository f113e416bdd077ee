// AppArmor and SELinux requests: a confinement berth cannot apply is an error, never a container that
// silently runs unconfined. AppArmor: the runtime default (or no request), Unconfined, or a profile by
// name, applied where the host runs AppArmor (src/container/apparmor.ts); a named profile on a host without
// it is FAILED_PRECONDITION, and the runtime default there is no profile (as with containerd and CRI-O).
// SELinux: a label fails with FAILED_PRECONDITION on a host without it, and UNIMPLEMENTED where it is
// enabled, as berth does not apply labels yet.
import type { SecurityProfile__Output } from '../../generated/runtime/v1/SecurityProfile';
import type { SELinuxOption__Output } from '../../generated/runtime/v1/SELinuxOption';
import { FailedPreconditionError, InvalidArgumentError, UnimplementedError } from '../../errors';
import { hostLsms } from '../../util/host-lsm';
import type { AppArmorRequest } from '../../container/apparmor';

export interface ConfinementRequest {
  apparmor?: SecurityProfile__Output | null;
  /** The deprecated string form: runtime/default, unconfined or localhost/<profile>. */
  apparmorProfile?: string;
  selinux?: SELinuxOption__Output | null;
}

/** A profile name as AppArmor's exec attribute takes it: not empty, no blank or NUL. */
const isProfileName = (name: string | undefined): name is string => Boolean(name) && !/[\s\0]/.test(name as string);

/** The AppArmor request of either field (the structured one first); nothing asked is the runtime default. */
function appArmorRequest(what: string, req: ConfinementRequest): AppArmorRequest {
  if (req.apparmor?.profile_type === 'Localhost') {
    if (!isProfileName(req.apparmor.localhost_ref)) throw new InvalidArgumentError(`${what}: apparmor.localhost_ref ${JSON.stringify(req.apparmor.localhost_ref)} is not a profile name`);
    return { kind: 'localhost', profile: req.apparmor.localhost_ref };
  }
  if (req.apparmor?.profile_type === 'Unconfined') return { kind: 'unconfined' };
  if (req.apparmor?.profile_type === 'RuntimeDefault') return { kind: 'runtime-default' };
  const legacy = req.apparmorProfile ?? '';
  if (legacy === '' || legacy === 'runtime/default') return { kind: 'runtime-default' };
  if (legacy === 'unconfined') return { kind: 'unconfined' };
  const name = legacy.startsWith('localhost/') ? legacy.slice('localhost/'.length) : undefined;
  if (isProfileName(name)) return { kind: 'localhost', profile: name };
  throw new InvalidArgumentError(`${what}: apparmor_profile ${JSON.stringify(legacy)} is not runtime/default, unconfined or localhost/<profile>`);
}

/** Checks the request's confinement and returns its AppArmor part (applied by the container's bundle). */
export function checkConfinement(what: string, req: ConfinementRequest): AppArmorRequest {
  const apparmor = appArmorRequest(what, req);
  if (apparmor.kind === 'localhost' && !hostLsms().apparmor) {
    throw new FailedPreconditionError(`${what}: AppArmor profile ${JSON.stringify(apparmor.profile)} requested, but AppArmor is not enabled on this host`);
  }
  const s = req.selinux;
  if (s && (s.user || s.role || s.type || s.level)) {
    const label = [s.user, s.role, s.type, s.level].join(':');
    if (!hostLsms().selinux) throw new FailedPreconditionError(`${what}: SELinux label ${JSON.stringify(label)} requested, but SELinux is not enabled on this host`);
    throw new UnimplementedError(`${what}: SELinux label ${JSON.stringify(label)} requested; berth does not apply SELinux labels yet`);
  }
  return apparmor;
}
