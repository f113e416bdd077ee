// AppArmor and SELinux requests (issue 14): a confinement berth cannot apply is an error, never a container
// that silently runs unconfined. RuntimeDefault and Unconfined need nothing (on a host without AppArmor the
// runtime default is no profile, as with containerd and CRI-O); a named profile or an SELinux label fails
// with FAILED_PRECONDITION on a host without the module, and UNIMPLEMENTED where it is enabled, as berth
// does not apply either yet.
import type { SecurityProfile__Output } from '../../generated/runtime/v1/SecurityProfile';
import type { SELinuxOption__Output } from '../../generated/runtime/v1/SELinuxOption';
import { FailedPreconditionError, InvalidArgumentError, UnimplementedError } from '../../errors';
import { hostLsms } from '../../util/host-lsm';

export interface ConfinementRequest {
  apparmor?: SecurityProfile__Output | null;
  /** The deprecated string form: runtime/default, unconfined or localhost/<profile>. */
  apparmorProfile?: string;
  selinux?: SELinuxOption__Output | null;
}

/** The AppArmor profile asked for by name, from either field; undefined for the runtime default or none. */
function namedAppArmorProfile(what: string, req: ConfinementRequest): string | undefined {
  if (req.apparmor?.profile_type === 'Localhost') return req.apparmor.localhost_ref || '(empty)';
  const legacy = req.apparmorProfile ?? '';
  if (legacy === '' || legacy === 'runtime/default' || legacy === 'unconfined') return undefined;
  if (legacy.startsWith('localhost/')) return legacy.slice('localhost/'.length);
  throw new InvalidArgumentError(`${what}: apparmor_profile ${JSON.stringify(legacy)} is not runtime/default, unconfined or localhost/<profile>`);
}

export function checkConfinement(what: string, req: ConfinementRequest): void {
  const profile = namedAppArmorProfile(what, req);
  if (profile !== undefined) {
    if (!hostLsms().apparmor) throw new FailedPreconditionError(`${what}: AppArmor profile ${JSON.stringify(profile)} requested, but AppArmor is not enabled on this host`);
    throw new UnimplementedError(`${what}: AppArmor profile ${JSON.stringify(profile)} requested; berth does not apply AppArmor profiles yet`);
  }
  const s = req.selinux;
  if (s && (s.user || s.role || s.type || s.level)) {
    const label = [s.user, s.role, s.type, s.level].join(':');
    if (!hostLsms().selinux) throw new FailedPreconditionError(`${what}: SELinux label ${JSON.stringify(label)} requested, but SELinux is not enabled on this host`);
    throw new UnimplementedError(`${what}: SELinux label ${JSON.stringify(label)} requested; berth does not apply SELinux labels yet`);
  }
}
