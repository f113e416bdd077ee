// The seccomp profile a CRI security context asks for (a container's or a pod's: the same two fields),
// checked for its form; a Localhost profile's file is read and checked when the bundle is made.
import type { LinuxContainerSecurityContext__Output } from '../../generated/runtime/v1/LinuxContainerSecurityContext';
import type { ContainerRequest } from '../../container/oci-spec';
import { InvalidArgumentError } from '../../errors';

type Seccomp = ContainerRequest['seccomp'];

/**
 * The seccomp profile, from the `seccomp` field or the older `seccomp_profile_path` (a container's or a
 * pod's security context: the same two fields).
 */
export function seccompOf(sc: Pick<LinuxContainerSecurityContext__Output, 'seccomp' | 'seccomp_profile_path'> | null | undefined): { seccomp: Seccomp; path: string } {
  const profile = sc?.seccomp;
  if (profile) {
    if (profile.profile_type === 'RuntimeDefault') return { seccomp: { kind: 'runtime-default' }, path: '' };
    if (profile.profile_type === 'Localhost') {
      if (!profile.localhost_ref.startsWith('/')) throw new InvalidArgumentError(`seccomp localhost_ref ${JSON.stringify(profile.localhost_ref)} is not an absolute path`);
      return { seccomp: { kind: 'localhost', profile: null }, path: profile.localhost_ref };
    }
    return { seccomp: { kind: 'unconfined' }, path: '' };
  }
  const legacy = sc?.seccomp_profile_path ?? '';
  if (legacy === '' || legacy === 'unconfined') return { seccomp: { kind: 'unconfined' }, path: '' };
  if (legacy === 'runtime/default' || legacy === 'docker/default') return { seccomp: { kind: 'runtime-default' }, path: '' };
  if (legacy.startsWith('localhost/')) {
    const file = legacy.slice('localhost/'.length);
    if (!file.startsWith('/')) throw new InvalidArgumentError(`seccomp_profile_path ${JSON.stringify(legacy)}: the profile is not an absolute path`);
    return { seccomp: { kind: 'localhost', profile: null }, path: file };
  }
  throw new InvalidArgumentError(`seccomp profile ${JSON.stringify(legacy)} is not runtime/default, unconfined or localhost/<path>`);
}
