// busybox: Debian's busybox-static (/bin/busybox) with a symlink per applet it lists (`sh` among them),
// a minimal /etc (root, daemon, a `berth` user with uid 1000, nobody), /tmp (1777), and `sh` as its
// command. Deterministic: fixed mtimes and owners, applets sorted, so the digests change only when
// Debian's busybox-static does.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { buildImage, layer, type BuiltImage } from '../../test/support/oci/image';
import { hostFile } from '../../test/support/oci/host';
import type { TarEntry } from '../../test/support/oci/tar';

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

export const BUSYBOX_CONFIG = {
  Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  Cmd: ['sh'],
};

/** The applets the installed busybox lists, sorted, `sh` always among them. */
export function busyboxApplets(): string[] {
  const listed = execFileSync(BUSYBOX_BINARY, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox' && !a.includes('/'));
  return [...new Set([...listed, 'sh'])].sort();
}

export function busyboxEntries(): TarEntry[] {
  if (!fs.existsSync(BUSYBOX_BINARY)) {
    throw new Error(`${BUSYBOX_BINARY} is missing: install Debian's busybox-static (hack/install.sh does)`);
  }
  return [
    { type: 'dir', path: 'bin/' },
    hostFile(BUSYBOX_BINARY, 'bin/busybox', { mode: 0o755 }),
    ...busyboxApplets().map((a): TarEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
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
  return buildImage([layer(busyboxEntries())], BUSYBOX_CONFIG);
}
