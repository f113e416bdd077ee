// The stand-ins for critest's images (hack/images/critest/): built from Debian packages, pushed to a
// real registry, pulled by a real berthd through registry.k8s.io and gcr.io mirrors, and checked for
// the properties critest v1.26's specs rely on (pkg/validate/image.go, consts.go, security_context_linux.go,
// multi_container_linux.go). critest itself is never needed: hack/critest.sh runs it.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRITEST_IMAGES, pushCritestImages, upstreamReferences, type PushedCritestImage } from '../../hack/images/critest';
import { busyboxLayer, busyboxRootfs } from '../../hack/images/critest/busybox';
import { startBerthd, type BerthdHandle } from '../support/berthd';
import { decompress, layer, type BuiltImage } from '../support/oci/image';
import { readTar, type ReadTarEntry } from '../support/oci/tar-read';
import { startRegistry, type TestRegistry } from '../support/registry';

const CRI_TOOLS = 'gcr.io/k8s-staging-cri-tools';

/** Every image reference critest v1.26 pulls on Linux/amd64 (pkg/validate/consts.go, framework/util.go). */
const CRITEST_REFERENCES = [
  'registry.k8s.io/e2e-test-images/busybox:1.29-2',
  'registry.k8s.io/e2e-test-images/nginx:1.14-2',
  'registry.k8s.io/e2e-test-images/httpd:2.4.39-4',
  'registry.k8s.io/e2e-test-images/nonewprivs:1.3',
  `${CRI_TOOLS}/hostnet-nginx-amd64:latest`,
  `${CRI_TOOLS}/test-image-predefined-group:latest`,
  `${CRI_TOOLS}/test-image-user-uid:latest`,
  `${CRI_TOOLS}/test-image-user-username:latest`,
  `${CRI_TOOLS}/test-image-user-uid-group:latest`,
  `${CRI_TOOLS}/test-image-user-username-group:latest`,
  `${CRI_TOOLS}/test-image-latest:latest`,
  `${CRI_TOOLS}/test-image-tag:test`,
  `${CRI_TOOLS}/test-image-tag:all`,
  `${CRI_TOOLS}/test-image-1:latest`,
  `${CRI_TOOLS}/test-image-2:latest`,
  `${CRI_TOOLS}/test-image-3:latest`,
  `${CRI_TOOLS}/test-image-tags:1`,
  `${CRI_TOOLS}/test-image-tags:2`,
  `${CRI_TOOLS}/test-image-tags:3`,
];

let pushed: PushedCritestImage[] = [];

/** The image pushed for an upstream reference (built once, in beforeAll). */
function built(reference: string): BuiltImage {
  const p = pushed.find((i) => upstreamReferences(i.image).includes(reference));
  if (!p) throw new Error(`no critest image for ${reference}`);
  return p.built;
}

/** The entries of an image's layers, the upper layer's winning, by path without a leading ./ or /. */
function files(image: BuiltImage): Map<string, ReadTarEntry> {
  const out = new Map<string, ReadTarEntry>();
  for (const l of image.layers) for (const e of readTar(decompress(l.data, 'gzip'))) out.set(e.path.replace(/\/$/, ''), e);
  return out;
}

describe('critest images', () => {
  let registry: TestRegistry;
  let berthd: BerthdHandle;

  beforeAll(async () => {
    registry = await startRegistry();
    pushed = await pushCritestImages(registry.host);
    berthd = await startBerthd({
      configToml: `
[image.registries."registry.k8s.io"]
mirrors = ["http://${registry.host}"]
[image.registries."gcr.io"]
mirrors = ["http://${registry.host}"]
`,
    });
  });

  afterAll(async () => {
    await berthd?.cleanup();
    await registry?.stop();
  });

  const pull = async (image: string) => (await berthd.client.image.PullImage({ image: { image } })).image_ref;
  const status = async (image: string) => (await berthd.client.image.ImageStatus({ image: { image }, verbose: true }));

  it('stands in for every image critest pulls, under its upstream repository path and tag', () => {
    const references = CRITEST_IMAGES.flatMap(upstreamReferences);
    expect([...references].sort()).toEqual([...CRITEST_REFERENCES, `${CRI_TOOLS}/test-image-digest:latest`].sort());
    const local = pushed.flatMap((p) => p.references);
    expect(local).toContain(`${registry.host}/e2e-test-images/busybox:1.29-2`);
    expect(local).toContain(`${registry.host}/k8s-staging-cri-tools/test-image-latest:latest`);
  });

  it('is deterministic: building again gives the same layers and manifests', () => {
    expect(layer(busyboxRootfs().entries()).digest).toBe(busyboxLayer().digest);
    for (const ref of ['registry.k8s.io/e2e-test-images/nonewprivs:1.3', `${CRI_TOOLS}/test-image-1:latest`, `${CRI_TOOLS}/test-image-user-uid:latest`]) {
      const image = CRITEST_IMAGES.find((i) => upstreamReferences(i).includes(ref));
      expect(image?.build().manifest.digest, ref).toBe(built(ref).manifest.digest);
    }
  });

  it('pulls the user images through the gcr.io mirror, with the USER critest expects in ImageStatus', async () => {
    const cases = [
      { name: 'test-image-user-uid', uid: '1002', username: '' },
      { name: 'test-image-user-username', uid: '0', username: 'www-data' },
      { name: 'test-image-user-uid-group', uid: '1003', username: '' },
      { name: 'test-image-user-username-group', uid: '0', username: 'www-data' },
      { name: 'test-image-predefined-group', uid: '1000', username: '' },
    ];
    for (const c of cases) {
      const ref = `${CRI_TOOLS}/${c.name}:latest`;
      expect(await pull(ref)).toBe(built(ref).config.digest);
      const s = await status(ref);
      expect(s.image?.repo_tags).toEqual([ref]);
      // critest compares GetUid().GetValue(): a missing uid counts as 0.
      expect(s.image?.uid?.value ?? '0', c.name).toBe(c.uid);
      expect(s.image?.username, c.name).toBe(c.username);
    }
    const predefined = files(built(`${CRI_TOOLS}/test-image-predefined-group:latest`));
    expect(predefined.get('etc/group')?.content.toString()).toMatch(/^group-defined-in-image:x:50000:default-user$/m);
    expect(predefined.get('etc/passwd')?.content.toString()).toMatch(/^default-user:x:1000:1000:/m);
  });

  it('has three tags on one image and three different images for test-image-1/2/3', async () => {
    const same = await Promise.all([1, 2, 3].map((t) => pull(`${CRI_TOOLS}/test-image-tags:${t}`)));
    expect(new Set(same).size).toBe(1);
    expect([...((await status(same[0])).image?.repo_tags ?? [])].sort()).toEqual([1, 2, 3].map((t) => `${CRI_TOOLS}/test-image-tags:${t}`));
    const different = await Promise.all([1, 2, 3].map((n) => pull(`${CRI_TOOLS}/test-image-${n}:latest`)));
    expect(new Set(different).size).toBe(3);
    expect(await pull(`${CRI_TOOLS}/test-image-tag:all`)).not.toBe(await pull(`${CRI_TOOLS}/test-image-tag:test`));
  });

  it('pulls the e2e images through the registry.k8s.io mirror with their commands', async () => {
    const expected: Record<string, { Cmd?: string[]; Entrypoint?: string[] }> = {
      'registry.k8s.io/e2e-test-images/busybox:1.29-2': { Cmd: ['sh'] },
      'registry.k8s.io/e2e-test-images/nginx:1.14-2': { Cmd: ['nginx', '-g', 'daemon off;'] },
      'registry.k8s.io/e2e-test-images/httpd:2.4.39-4': { Cmd: ['httpd-foreground'] },
      'registry.k8s.io/e2e-test-images/nonewprivs:1.3': { Entrypoint: ['/usr/local/bin/nnp'] },
    };
    for (const [ref, cmd] of Object.entries(expected)) {
      await pull(ref);
      const config = JSON.parse((await status(ref)).info.info).imageSpec.config;
      expect(config, ref).toMatchObject(cmd);
      expect(config.Env, ref).toContainEqual(expect.stringMatching(/^PATH=.*\/bin/));
    }
  });

  it('busybox: applets critest runs are hard links to a dynamic busybox (so masking /bin/ls masks ls alone), with its libraries', () => {
    const fsys = files(built('registry.k8s.io/e2e-test-images/busybox:1.29-2'));
    expect(fsys.get('bin/busybox')?.typeflag).toBe('0');
    for (const applet of ['sh', 'echo', 'sleep', 'cat', 'ls', 'pidof', 'mount', 'nc', 'wget', 'id', 'ps', 'grep', 'top', 'hostname', 'mkdir', 'touch', 'stat', 'brctl', 'netstat', 'ping', 'chmod']) {
      const e = fsys.get(`bin/${applet}`);
      expect(e?.typeflag, applet).toBe('1');
      expect(e?.linkname, applet).toBe('bin/busybox');
    }
    for (const tool of ['bin/ipcs', 'bin/pgrep']) expect(fsys.get(tool)?.typeflag, tool).toBe('0');
    expect(fsys.get('lib64/ld-linux-x86-64.so.2')?.typeflag).toBe('0');
    expect(fsys.get('lib/x86_64-linux-gnu/libc.so.6')?.typeflag).toBe('0');
    expect(fsys.get('etc/passwd')?.content.toString()).toMatch(/^nobody:x:65534:/m);
    expect(fsys.get('etc/passwd')?.content.toString()).toMatch(/^www-data:x:33:/m);
    expect(fsys.get('tmp')?.mode).toBe(0o1777);
    // Every image but the user images adds to this one layer.
    expect(busyboxRootfs().has('bin/busybox')).toBe(true);
    for (const p of pushed) expect(p.built.layers[0].digest, p.image.repository).toBe(busyboxLayer().digest);
  });

  it('nonewprivs: nnp is set-uid root; nginx and httpd have their servers, configs and libraries', () => {
    const nnp = files(built('registry.k8s.io/e2e-test-images/nonewprivs:1.3')).get('usr/local/bin/nnp');
    expect(nnp?.mode).toBe(0o4755);
    expect(nnp?.uid).toBe(0);
    for (const [ref, port] of [['registry.k8s.io/e2e-test-images/nginx:1.14-2', 80], [`${CRI_TOOLS}/hostnet-nginx-amd64:latest`, 12003]] as const) {
      const fsys = files(built(ref));
      expect(fsys.get('usr/sbin/nginx')?.typeflag).toBe('0');
      expect(fsys.get('etc/nginx/nginx.conf')?.content.toString()).toContain('pid        /var/run/nginx.pid;');
      expect(fsys.get('etc/nginx/conf.d/default.conf')?.content.toString()).toContain(`listen       ${port};`);
      expect(fsys.get('lib/x86_64-linux-gnu/libpcre2-8.so.0')?.typeflag).toBe('0');
    }
    const httpd = files(built('registry.k8s.io/e2e-test-images/httpd:2.4.39-4'));
    expect(httpd.get('usr/local/apache2/bin/httpd')?.typeflag).toBe('0');
    expect(httpd.get('usr/local/apache2/bin/httpd-foreground')?.content.toString()).toContain('exec httpd -DFOREGROUND');
    expect(httpd.get('etc/apache2/apache2.conf')?.content.toString()).toMatch(/^Listen 80$/m);
    expect(httpd.get(path.posix.join('usr/lib/apache2/modules', 'mod_mpm_event.so'))?.typeflag).toBe('0');
  });
});
