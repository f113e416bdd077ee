// The test registry and image builder: what the image-service tests stand on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxImage } from '../../hack/images/busybox';
import { pushTestImages } from '../../hack/images';
import { sha256 } from '../support/oci/image';
import { pushImage } from '../support/oci/push';
import { tar } from '../support/oci/tar';
import { startRegistry, type TestRegistry } from '../support/registry';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

describe('test registry and images', () => {
  let registry: TestRegistry;
  let authRegistry: TestRegistry;
  const auth = { username: 'berth', password: 's3cret' };

  beforeAll(async () => {
    [registry, authRegistry] = await Promise.all([startRegistry(), startRegistry({ auth })]);
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), authRegistry?.stop()]);
  });

  it('pushes busybox, whose manifest and blobs come back with the digests pushed', async () => {
    const digests = await pushTestImages(registry.host, ['busybox']);
    const res = await fetch(`${registry.url}/v2/busybox/manifests/latest`, { headers: { accept: ACCEPT } });
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(sha256(body)).toBe(digests.busybox);
    const manifest = JSON.parse(body.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
    for (const { digest } of [manifest.config, ...manifest.layers]) {
      const blob = Buffer.from(await (await fetch(`${registry.url}/v2/busybox/blobs/${digest}`)).arrayBuffer());
      expect(sha256(blob)).toBe(digest);
    }
    const tagged = await fetch(`${registry.url}/v2/busybox/manifests/1.36`, { headers: { accept: ACCEPT } });
    expect(tagged.headers.get('docker-content-digest')).toBe(digests.busybox);
  });

  it('builds the same image twice with the same digest', () => {
    expect(busyboxImage().manifest.digest).toBe(busyboxImage().manifest.digest);
  });

  it('an auth registry refuses anonymous pushes and accepts the credentials', async () => {
    const image = busyboxImage();
    await expect(pushImage({ host: authRegistry.host, repository: 'busybox' }, image, ['latest'])).rejects.toThrow(/HTTP 401/);
    await pushImage({ host: authRegistry.host, repository: 'busybox', auth }, image, ['latest']);
    const anon = await fetch(`${authRegistry.url}/v2/busybox/manifests/latest`, { headers: { accept: ACCEPT } });
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toMatch(/^Basic realm="berth-test"/);
  });

  it('writes hostile tar entries verbatim', () => {
    const t = tar([
      { type: 'file', path: '../escape', content: 'x' },
      { type: 'symlink', path: 'evil', target: '/' },
    ]);
    expect(t.subarray(0, 100).toString('utf8').replace(/\0+$/, '')).toBe('../escape');
    expect(t.subarray(1024 + 157, 1024 + 257).toString('utf8').replace(/\0+$/, '')).toBe('/');
  });
});
