// Which Linux security modules this host runs, read once: a confinement the kubelet asks for can only be
// applied where its module is enabled.
import fs from 'node:fs';

export interface HostLsms {
  apparmor: boolean;
  selinux: boolean;
}

let lsms: HostLsms | undefined;

export function hostLsms(): HostLsms {
  lsms ??= {
    apparmor: readTrimmed('/sys/module/apparmor/parameters/enabled') === 'Y',
    selinux: fs.existsSync('/sys/fs/selinux/enforce'),
  };
  return lsms;
}

function readTrimmed(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}
