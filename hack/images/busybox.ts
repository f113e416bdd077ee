// busybox: Debian's busybox-static with a symlink per applet, a minimal /etc, and `sh` as its command.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { TarEntry } from '../../test/support/oci/tar';
import { buildImage, layer, type BuiltImage } from '../../test/support/oci/image';

export const BUSYBOX_BINARY = '/bin/busybox';

export const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
berth:x:1000:1000:berth test user:/home/berth:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`;

export const GROUP = `root:x:0:
daemon:x:1:
berth:x:1000:
extra:x:50000:berth
nogroup:x:65534:
`;

export function busyboxEntries(): TarEntry[] {
  if (!fs.existsSync(BUSYBOX_BINARY)) {
    throw new Error(`${BUSYBOX_BINARY} is missing: install Debian's busybox-static (hack/install.sh does)`);
  }
  const applets = execFileSync(BUSYBOX_BINARY, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox')
    .sort();
  return [
    { type: 'dir', path: 'bin/' },
    { type: 'file', path: 'bin/busybox', content: fs.readFileSync(BUSYBOX_BINARY), mode: 0o755 },
    ...applets.map((a): TarEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    { type: 'dir', path: 'etc/' },
    { type: 'file', path: 'etc/passwd', content: PASSWD },
    { type: 'file', path: 'etc/group', content: GROUP },
    { type: 'dir', path: 'home/' },
    { type: 'dir', path: 'home/berth/', uid: 1000, gid: 1000 },
    { type: 'dir', path: 'root/', mode: 0o700 },
    { type: 'dir', path: 'tmp/', mode: 0o1777 },
    { type: 'dir', path: 'var/' },
    { type: 'dir', path: 'var/run/' },
  ];
}

export function busyboxImage(): BuiltImage {
  return buildImage([layer(busyboxEntries())], {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: ['sh'],
  });
}
