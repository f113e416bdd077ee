// registry.k8s.io/e2e-test-images/busybox:1.29-2, critest's default container image, from Debian's
// dynamic `busybox` package (its shell execs applets through PATH, as upstream's busybox does; the
// busybox-static shell runs them in-process, which defeats the MaskedPaths spec's masked /bin/ls).
// Every applet is a HARD LINK to /bin/busybox, so masking /bin/ls masks ls alone. Debian's busybox has
// no ipcs or pgrep, which critest runs: those come from util-linux and procps. The shared libraries are
// the ones `ldd` names. /etc/passwd and /etc/group are upstream busybox's (www-data, nobody, ...).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildImage, layer, type BuiltImage, type ImageConfig, type Layer } from '../../../test/support/oci/image';
import { debPackageRoot, Rootfs } from './rootfs';

export const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const BUSYBOX_CONFIG: ImageConfig = { Env: [PATH_ENV], Cmd: ['sh'] };

/** Upstream busybox's /etc/passwd. */
export const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`;

/** Upstream busybox's /etc/group. */
export const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`;

export const NSSWITCH = `passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
`;

/** Host binaries critest runs that Debian's busybox lacks (Debian package in the comment). */
export const EXTRA_BINARIES = [
  '/usr/bin/ipcs', // util-linux: `ipcs -m` (HostIpc specs)
  '/usr/bin/pgrep', // procps: `pgrep sleep` (execSync timeout spec)
];

/** Debian's dynamic busybox binary, unpacked from its .deb (same version as the installed busybox-static). */
export function dynamicBusybox(): string {
  const root = debPackageRoot('busybox', { sameVersionAs: 'busybox-static' });
  return path.join(root, 'bin', 'busybox');
}

function applets(busybox: string): string[] {
  const listed = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox' && !a.includes('/'));
  return [...new Set(listed)].sort();
}

let cached: { rootfs: Rootfs; layer: Layer } | undefined;

/** The busybox root filesystem (for layers above it to leave out what it has). */
export function busyboxRootfs(): Rootfs {
  return busyboxBase().rootfs;
}

/** The one busybox layer every critest image but the web servers' upper layers starts from (built once). */
export function busyboxLayer(): Layer {
  return busyboxBase().layer;
}

function busyboxBase(): { rootfs: Rootfs; layer: Layer } {
  if (cached) return cached;
  const busybox = dynamicBusybox();
  const fsys = new Rootfs();
  for (const d of ['dev', 'proc', 'sys', 'home', 'usr/bin', 'usr/sbin', 'usr/local/bin', 'sbin', 'var/spool/mail', 'var/www']) fsys.dir(d);
  fsys.dir('root', { mode: 0o700 }).dir('tmp', { mode: 0o1777 }).dir('var/run');
  fsys.binary(busybox, 'bin/busybox', { mode: 0o755 });
  for (const a of applets(busybox)) if (!fsys.has(`bin/${a}`)) fsys.hardlink(`bin/${a}`, 'bin/busybox');
  for (const bin of EXTRA_BINARIES) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing (install util-linux and procps)`);
    fsys.binary(bin, `bin/${path.basename(bin)}`, { mode: 0o755 });
  }
  fsys.file('etc/passwd', PASSWD).file('etc/group', GROUP).file('etc/nsswitch.conf', NSSWITCH);
  fsys.file('etc/shadow', PASSWD.split('\n').filter(Boolean).map((l) => `${l.split(':')[0]}:*:10933:0:99999:7:::`).join('\n') + '\n', { mode: 0o600 });
  cached = { rootfs: fsys, layer: layer(fsys.entries()) };
  return cached;
}

export function critestBusyboxImage(): BuiltImage {
  return buildImage([busyboxLayer()], BUSYBOX_CONFIG);
}
