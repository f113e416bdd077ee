// registry.k8s.io/e2e-test-images/nginx:1.14-2 and gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:
// Debian's nginx (package `nginx`) over the critest busybox layer (the specs exec sh, cat, grep, sleep
// in it). As upstream's: `nginx -g 'daemon off;'` in the foreground as PID 1, so its title reads
// "nginx: master process nginx -g daemon off;", the pid in /var/run/nginx.pid, workers as user nginx
// (uid 101), logs to the container's stdout/stderr, and an index page answering 200 on port 80 (12003 for
// the host-network image, as cri-tools' images/hostnet-nginx/default.conf).
import fs from 'node:fs';
import { buildImage, layer, type BuiltImage } from '../../../test/support/oci/image';
import { busyboxLayer, busyboxRootfs, GROUP, PASSWD, PATH_ENV } from './busybox';
import { Rootfs } from './rootfs';

export const NGINX_BINARY = '/usr/sbin/nginx';

export const NGINX_CONF = `user  nginx;
worker_processes  1;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;
    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';
    access_log  /var/log/nginx/access.log  main;
    sendfile        on;
    keepalive_timeout  65;
    include /etc/nginx/conf.d/*.conf;
}
`;

export function defaultConf(port: number): string {
  return `server {
    listen       ${port};
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
`;
}

export const INDEX_HTML = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and working.</p>
</body>
</html>
`;

function nginxLayerEntries(port: number) {
  if (!fs.existsSync(NGINX_BINARY)) throw new Error(`${NGINX_BINARY} is missing: install Debian's nginx package (hack/install.sh does)`);
  const fsys = new Rootfs();
  fsys.binary(NGINX_BINARY, 'usr/sbin/nginx', { mode: 0o755 });
  fsys.file('etc/passwd', `${PASSWD}nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n`);
  fsys.file('etc/group', `${GROUP}nginx:x:101:nginx\n`);
  fsys.file('etc/nginx/nginx.conf', NGINX_CONF);
  fsys.hostFile('/etc/nginx/mime.types', 'etc/nginx/mime.types', { mode: 0o644 });
  fsys.file('etc/nginx/conf.d/default.conf', defaultConf(port));
  fsys.file('usr/share/nginx/html/index.html', INDEX_HTML);
  fsys.file('usr/share/nginx/html/50x.html', '<html><body><h1>An error occurred.</h1></body></html>\n');
  // As upstream's image: the log files are the container's stdout and stderr.
  fsys.symlink('var/log/nginx/access.log', '/dev/stdout').symlink('var/log/nginx/error.log', '/dev/stderr');
  fsys.dir('var/lib/nginx').dir('var/cache/nginx').dir('var/run');
  return fsys.without(busyboxRootfs()).entries();
}

const nginxConfig = (port: number) => ({
  Env: [PATH_ENV, 'NGINX_VERSION=1.14.2'],
  Cmd: ['nginx', '-g', 'daemon off;'],
  ExposedPorts: { [`${port}/tcp`]: {} },
  StopSignal: 'SIGTERM',
});

export function nginxImage(): BuiltImage {
  return buildImage([busyboxLayer(), layer(nginxLayerEntries(80))], nginxConfig(80));
}

export function hostnetNginxImage(): BuiltImage {
  return buildImage([busyboxLayer(), layer(nginxLayerEntries(12003))], nginxConfig(12003));
}
