// registry.k8s.io/e2e-test-images/httpd:2.4.39-4: Debian's Apache (package `apache2-bin`: the server
// and its modules, no Debian configuration or service) over the critest busybox layer, laid out as
// upstream's httpd image: /usr/local/apache2/bin/httpd, htdocs/index.html ("It works!"), port 80, the
// error log on stderr, and `httpd-foreground` (exec httpd -DFOREGROUND) as its command, so the log
// carries "AH00094: Command line: 'httpd -D FOREGROUND'", which critest's multi-container spec looks for.
import fs from 'node:fs';
import path from 'node:path';
import { buildImage, layer, type BuiltImage } from '../../../test/support/oci/image';
import { busyboxLayer, busyboxRootfs } from './busybox';
import { Rootfs } from './rootfs';

export const APACHE_BINARY = '/usr/sbin/apache2';
export const APACHE_MODULES = '/usr/lib/apache2/modules';
const MODULES = ['mpm_event', 'authz_core', 'mime', 'dir'];

// Debian's apache2 reads <HTTPD_ROOT>/<SERVER_CONFIG_FILE>, /etc/apache2/apache2.conf (`apache2 -V`).
export const HTTPD_CONF = `ServerRoot "/usr/local/apache2"
Listen 80
${MODULES.map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`).join('\n')}
User daemon
Group daemon
ServerName localhost
ServerAdmin you@example.com
DocumentRoot "/usr/local/apache2/htdocs"
<Directory />
    AllowOverride none
    Require all denied
</Directory>
<Directory "/usr/local/apache2/htdocs">
    Options Indexes FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>
DirectoryIndex index.html
ErrorLog /proc/self/fd/2
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog /proc/self/fd/1 common
TypesConfig conf/mime.types
PidFile logs/httpd.pid
DefaultRuntimeDir logs
`;

export const MIME_TYPES = `text/html\thtml htm
text/plain\ttxt
text/css\tcss
`;

export const HTTPD_FOREGROUND = `#!/bin/sh
set -e

# Apache gets grumpy about PID files pre-existing
rm -f /usr/local/apache2/logs/httpd.pid

exec httpd -DFOREGROUND "$@"
`;

export function httpdImage(): BuiltImage {
  if (!fs.existsSync(APACHE_BINARY)) throw new Error(`${APACHE_BINARY} is missing: install Debian's apache2-bin package (hack/install.sh does)`);
  const fsys = new Rootfs();
  fsys.binary(APACHE_BINARY, 'usr/local/apache2/bin/httpd', { mode: 0o755 });
  for (const m of MODULES) {
    const so = path.join(APACHE_MODULES, `mod_${m}.so`);
    fsys.hostFile(so, so, { mode: 0o644 }).libraries(so);
  }
  fsys.file('usr/local/apache2/bin/httpd-foreground', HTTPD_FOREGROUND, { mode: 0o755 });
  fsys.file('etc/apache2/apache2.conf', HTTPD_CONF);
  fsys.file('usr/local/apache2/conf/mime.types', MIME_TYPES);
  fsys.file('usr/local/apache2/htdocs/index.html', '<html><body><h1>It works!</h1></body></html>\n');
  fsys.dir('usr/local/apache2/logs', { uid: 1, gid: 1 });
  return buildImage([busyboxLayer(), layer(fsys.without(busyboxRootfs()).entries())], {
    Env: ['PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HTTPD_PREFIX=/usr/local/apache2', 'HTTPD_VERSION=2.4.39'],
    Cmd: ['httpd-foreground'],
    WorkingDir: '/usr/local/apache2',
    ExposedPorts: { '80/tcp': {} },
  });
}
