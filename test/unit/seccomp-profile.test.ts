// Localhost seccomp profiles are checked before the runtime sees them.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors';
import { parseSeccompProfile } from '../../src/container/seccomp-profile';

describe('Localhost seccomp profiles', () => {
  const refused: [string, string, RegExp][] = [
    ['not JSON', '{"defaultAction":', /not JSON/],
    ['a list', '[]', /not a JSON object/],
    ['no defaultAction', '{}', /defaultAction undefined/],
    ['an unknown defaultAction', '{"defaultAction":"SCMP_ACT_MAYBE"}', /defaultAction "SCMP_ACT_MAYBE"/],
    ['architectures that are not names', '{"defaultAction":"SCMP_ACT_ERRNO","architectures":["x86"]}', /architectures/],
    ['syscalls that are not a list', '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":{}}', /syscalls is not a list/],
    ['a rule naming no syscall', '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}', /syscalls\[0\] names no syscall/],
    ['a rule with an unknown action', '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"ALLOW"}]}', /syscalls\[0\]\.action "ALLOW"/],
  ];
  it.each(refused)('refuses %s with INVALID_ARGUMENT naming the file', (_name, text, message) => {
    expect(() => parseSeccompProfile(text, '/var/lib/kubelet/seccomp/p.json')).toThrow(InvalidArgumentError);
    expect(() => parseSeccompProfile(text, '/var/lib/kubelet/seccomp/p.json')).toThrow(message);
    expect(() => parseSeccompProfile(text, '/var/lib/kubelet/seccomp/p.json')).toThrow(/p\.json/);
  });

  it('accepts the Docker/OCI form, with names or the older single name', () => {
    const profile = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }, { name: 'exit', action: 'SCMP_ACT_ALLOW' }] };
    expect(parseSeccompProfile(JSON.stringify(profile), 'p.json')).toEqual(profile);
  });
});
