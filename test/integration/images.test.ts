// The image service against a real registry (Debian's docker-registry on loopback) and a real berthd.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxImage } from '../../hack/images/busybox';
import { mount, umount2, MNT_DETACH, lgetxattr } from '../../src/native';
import { startBerthd, type BerthdHandle } from '../support/berthd';
import { buildImage, buildIndex, layer, layerFromTar, sha256, type Layer } from '../support/oci/image';
import { pushImage, pushIndex } from '../support/oci/push';
import { tar } from '../support/oci/tar';
import { startRegistry, type TestRegistry } from '../support/registry';

const auth = { username: 'puller', password: 'right-password' };

describe('image service', () => {
  let registry: TestRegistry;
  let authRegistry: TestRegistry;
  let upstream: TestRegistry;
  let berthd: BerthdHandle;
  let busyboxDigest: string;
  let authFile: string;

  beforeAll(async () => {
    [registry, authRegistry, upstream] = await Promise.all([startRegistry(), startRegistry({ auth }), startRegistry()]);
    busyboxDigest = await pushImage({ host: registry.host, repository: 'busybox' }, busyboxImage(), ['latest', '1.36']);
    await pushImage({ host: authRegistry.host, repository: 'private/busybox', auth }, busyboxImage(), ['latest']);
    await pushImage({ host: upstream.host, repository: 'only-upstream' }, busyboxImage(), ['v1']);
    authFile = path.join(os.tmpdir(), `berth-auth-${process.pid}.json`);
    fs.writeFileSync(authFile, JSON.stringify({ auths: {} }));
    berthd = await startBerthd({
      configToml: `
[image]
max_layer_bytes = 20000000
auth_file = "${authFile}"
pinned_images = ["${registry.host}/busybox:1.36"]
[image.registries."mirrored.example"]
mirrors = ["http://127.0.0.1:1", "http://${registry.host}"]
[image.registries."fallback.example"]
mirrors = ["http://${registry.host}"]
[image.registries."${upstream.host}"]
mirrors = ["http://${registry.host}"]
`,
    });
  });

  afterAll(async () => {
    await berthd?.cleanup();
    await Promise.all([registry?.stop(), authRegistry?.stop(), upstream?.stop()]);
    fs.rmSync(authFile, { force: true });
  });

  const pull = (image: string, authConfig?: { username: string; password: string }) =>
    berthd.client.image.PullImage({ image: { image }, ...(authConfig ? { auth: authConfig } : {}) });
  const status = (image: string) => berthd.client.image.ImageStatus({ image: { image } });

  it('pulls by tag; image_ref is the image ID (the config digest)', async () => {
    const res = await pull(`${registry.host}/busybox:latest`);
    expect(res.image_ref).toBe(busyboxImage().config.digest);
  });

  it("pulls for a pod (sandbox_config: the pod is named in the log) and refuses a runtime handler it does not know", async () => {
    const before = berthd.output().length;
    const sandbox_config = { metadata: { name: 'web', namespace: 'shop', uid: 'u-web', attempt: 0 } };
    const res = await berthd.client.image.PullImage({ image: { image: `${registry.host}/busybox:latest`, runtime_handler: 'runc' }, sandbox_config });
    expect(res.image_ref).toBe(busyboxImage().config.digest);
    const asked = berthd.output().slice(before).split('\n').filter((l) => l.includes('"pull requested for a pod"'));
    expect(asked.map((l) => (JSON.parse(l) as { pod: string; image: string }).pod)).toEqual(['shop/web']);
    await expect(berthd.client.image.PullImage({ image: { image: `${registry.host}/busybox:latest`, runtime_handler: 'kata' } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('unknown runtime handler "kata"'),
    });
    await expect(berthd.client.image.PullImage({ image: { image: `${registry.host}/busybox:latest` }, sandbox_config: { metadata: { name: 'a/b', namespace: 'shop', uid: 'u', attempt: 0 } } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  });

  it('finds the same image by ID, bare hex, tag, digest and ID prefix', async () => {
    const id = busyboxImage().config.digest;
    const byId = (await status(id)).image;
    expect(byId?.repo_tags).toEqual([`${registry.host}/busybox:latest`]);
    expect(byId?.repo_digests).toEqual([`${registry.host}/busybox@${busyboxDigest}`]);
    expect(byId?.size).toBe(String(busyboxImage().config.size + busyboxImage().layers[0].size));
    for (const name of [id.slice(7), `${registry.host}/busybox`, `${registry.host}/busybox@${busyboxDigest}`, id.slice(7, 19)]) {
      expect((await status(name)).image).toEqual(byId);
    }
    expect((await berthd.client.image.ListImages({ filter: { image: { image: `${registry.host}/busybox` } } })).images).toEqual([byId]);
  });

  it('answers an unknown image with an empty status, and verbose status carries the image config', async () => {
    expect((await status('docker.io/library/never-pulled:1')).image).toBeNull();
    const verbose = await berthd.client.image.ImageStatus({ image: { image: busyboxImage().config.digest }, verbose: true });
    expect(JSON.parse(verbose.info.info).imageSpec.config.Cmd).toEqual(['sh']);
  });

  it('pulls by digest, adding the digest to the same image', async () => {
    const res = await pull(`${registry.host}/busybox@${busyboxDigest}`);
    expect(res.image_ref).toBe(busyboxImage().config.digest);
    const images = (await berthd.client.image.ListImages({})).images.filter((i) => i.id === res.image_ref);
    expect(images).toHaveLength(1);
  });

  it('pulls through an index, choosing linux/amd64', async () => {
    const amd64 = buildImage([layer([{ type: 'file', path: 'arch', content: 'amd64' }])], {}, { platform: { os: 'linux', architecture: 'amd64' } });
    const arm64 = buildImage([layer([{ type: 'file', path: 'arch', content: 'arm64' }])], {}, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const index = buildIndex([arm64, amd64]);
    await pushIndex({ host: registry.host, repository: 'multi' }, [arm64, amd64], index, ['latest']);
    const res = await pull(`${registry.host}/multi:latest`);
    expect(res.image_ref).toBe(amd64.config.digest);
    expect((await status(res.image_ref)).image?.repo_digests).toEqual([`${registry.host}/multi@${index.digest}`]);
    const onlyArm = buildIndex([arm64]);
    await pushIndex({ host: registry.host, repository: 'armonly' }, [arm64], onlyArm, ['latest']);
    await expect(pull(`${registry.host}/armonly:latest`)).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: expect.stringContaining('no manifest for platform linux/amd64'),
    });
  });

  it('pulls Docker schema2 images through a Docker manifest list', async () => {
    const image = buildImage([layer([{ type: 'file', path: 'docker', content: 'yes' }], 'gzip', 'docker')], { User: 'nginx:www' }, { style: 'docker' });
    const list = buildIndex([image], 'docker');
    await pushIndex({ host: registry.host, repository: 'dockerstyle' }, [image], list, ['latest']);
    const res = await pull(`${registry.host}/dockerstyle:latest`);
    expect(res.image_ref).toBe(image.config.digest);
    const img = (await status(res.image_ref)).image;
    expect(img?.username).toBe('nginx');
    expect(img?.uid).toBeNull();
  });

  it('unpacks layers that delete and replace files so that overlayfs stacks them right', async () => {
    const lower = layer([
      { type: 'dir', path: 'a/' },
      { type: 'file', path: 'a/keep', content: 'keep' },
      { type: 'file', path: 'a/gone', content: 'gone' },
      { type: 'dir', path: 'b/' },
      { type: 'file', path: 'b/old', content: 'old' },
      { type: 'file', path: 'c', content: 'v1' },
      { type: 'symlink', path: 'link', target: 'c' },
      { type: 'file', path: 'suid', content: '#!', mode: 0o4755, uid: 1000, gid: 50 },
    ]);
    const upper = layer(
      [
        { type: 'file', path: 'a/.wh.gone', content: '' },
        { type: 'file', path: 'b/.wh..wh..opq', content: '' },
        { type: 'file', path: 'b/new', content: 'new' },
        { type: 'file', path: 'c', content: 'v2' },
        { type: 'hardlink', path: 'c-again', target: 'c' },
      ],
      'zstd',
    );
    const image = buildImage([lower, upper]);
    await pushImage({ host: registry.host, repository: 'layered' }, image, ['latest']);
    await pull(`${registry.host}/layered:latest`);
    const info = JSON.parse((await berthd.client.image.ImageStatus({ image: { image: image.config.digest }, verbose: true })).info.info) as { chainIds: string[] };
    const dirs = info.chainIds.map((c) => path.join(berthd.root, 'layers', c.slice(7), 'diff'));
    const gone = fs.lstatSync(path.join(dirs[1], 'a', 'gone'));
    expect(gone.isCharacterDevice() && gone.rdev === 0).toBe(true);
    expect(lgetxattr(path.join(dirs[1], 'b'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    const suid = fs.statSync(path.join(dirs[0], 'suid'));
    expect([suid.mode & 0o7777, suid.uid, suid.gid]).toEqual([0o4755, 1000, 50]);
    expect(fs.statSync(path.join(dirs[1], 'c')).ino).toBe(fs.statSync(path.join(dirs[1], 'c-again')).ino);

    const merged = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-merged-'));
    mount('overlay', merged, 'overlay', 0, `lowerdir=${dirs[1]}:${dirs[0]}`);
    try {
      expect(fs.readdirSync(path.join(merged, 'a')).sort()).toEqual(['keep']);
      expect(fs.readdirSync(path.join(merged, 'b'))).toEqual(['new']);
      expect(fs.readFileSync(path.join(merged, 'c'), 'utf8')).toBe('v2');
      expect(fs.readFileSync(path.join(merged, 'link'), 'utf8')).toBe('v2');
    } finally {
      umount2(merged, MNT_DETACH);
      fs.rmdirSync(merged);
    }
  });

  it('pulls with basic-auth credentials, and says so when they are wrong or missing', async () => {
    const ref = `${authRegistry.host}/private/busybox:latest`;
    await expect(pull(ref)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(pull(ref, { username: auth.username, password: 'wrong' })).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: expect.stringMatching(/authentication failed for .* as user puller/),
    });
    expect((await pull(ref, auth)).image_ref).toBe(busyboxImage().config.digest);
    expect(berthd.output()).not.toContain(auth.password);
  });

  it('takes credentials from the configured auth file when the request has none', async () => {
    const ref = `${authRegistry.host}/private/busybox:latest`;
    await berthd.client.image.RemoveImage({ image: { image: ref } });
    const encoded = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    fs.writeFileSync(authFile, JSON.stringify({ auths: { [authRegistry.host]: { auth: encoded } } }));
    try {
      expect((await pull(ref)).image_ref).toBe(busyboxImage().config.digest);
    } finally {
      fs.writeFileSync(authFile, JSON.stringify({ auths: {} }));
    }
  });

  it('reports images named in image.pinned_images as pinned', async () => {
    await pull(`${registry.host}/busybox:1.36`);
    expect((await status(`${registry.host}/busybox:1.36`)).image?.pinned).toBe(true);
    await pushImage({ host: registry.host, repository: 'unpinned' }, buildImage([layer([{ type: 'file', path: 'u', content: 'u' }])]), ['latest']);
    await pull(`${registry.host}/unpinned:latest`);
    expect((await status(`${registry.host}/unpinned:latest`)).image?.pinned).toBe(false);
  });

  it('uses mirrors in order, skipping a dead one, and falls back to the registry itself', async () => {
    const res = await pull('mirrored.example/busybox:1.36');
    expect(res.image_ref).toBe(busyboxImage().config.digest);
    expect((await status('mirrored.example/busybox:1.36')).image?.repo_tags).toContain('mirrored.example/busybox:1.36');
    // The mirror lacks this image: the registry itself serves it.
    expect((await pull(`${upstream.host}/only-upstream:v1`)).image_ref).toBe(busyboxImage().config.digest);
    // The mirror lacks it and fallback.example does not resolve: unavailable, naming the registry.
    await expect(pull('fallback.example/only-upstream:v1')).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringContaining('registry fallback.example unreachable'),
    });
  });

  it('answers NOT_FOUND for an unknown image and UNAVAILABLE for an unreachable registry', async () => {
    await expect(pull(`${registry.host}/no-such-image:latest`)).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: expect.stringContaining(`${registry.host}/no-such-image:latest`),
    });
    await expect(pull('127.0.0.1:1/busybox:latest')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(pull('Invalid//Name')).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('refuses hostile layers without writing outside the layer, and keeps nothing of them', async () => {
    const canary = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-canary-'));
    const before = fs.readdirSync(path.join(berthd.root, 'layers')).sort();
    const hostile: Array<[string, Layer]> = [
      ['dotdot', layer([{ type: 'file', path: `../../../../../..${canary}/escaped`, content: 'x' }])],
      ['absolute', layer([{ type: 'file', path: `${canary}/escaped`, content: 'x' }])],
      ['symlink-parent', layer([{ type: 'symlink', path: 'evil', target: canary }, { type: 'file', path: 'evil/escaped', content: 'x' }])],
      ['hardlink-out', layer([{ type: 'hardlink', path: 'passwd', target: '../../../../../../etc/passwd' }])],
    ];
    for (const [name, bad] of hostile) {
      await pushImage({ host: registry.host, repository: `hostile-${name}` }, buildImage([bad]), ['latest']);
      await expect(pull(`${registry.host}/hostile-${name}:latest`)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    }
    expect(fs.readdirSync(canary)).toEqual([]);
    expect(fs.readdirSync(path.join(berthd.root, 'layers')).sort()).toEqual(before);
    fs.rmdirSync(canary);
  });

  it('stops a decompression bomb at the size limit', async () => {
    const bomb = layerFromTar(tar([{ type: 'file', path: 'zeros', content: Buffer.alloc(64 * 1024 * 1024) }]));
    expect(bomb.size).toBeLessThan(200 * 1024);
    await pushImage({ host: registry.host, repository: 'bomb' }, buildImage([bomb]), ['latest']);
    await expect(pull(`${registry.host}/bomb:latest`)).rejects.toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: expect.stringContaining('max_layer_bytes'),
    });
  });

  it('refuses a blob whose bytes do not match its digest, and leaves no trace of it', async () => {
    const image = buildImage([layer([{ type: 'file', path: 'f', content: 'tampered-test' }])]);
    await pushImage({ host: registry.host, repository: 'tampered' }, image, ['latest']);
    const digest = image.layers[0].digest.slice(7);
    const blobFile = path.join(registry.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', digest.slice(0, 2), digest, 'data');
    const gz = zlib.gzipSync(tar([{ type: 'file', path: 'f', content: 'tampered-tesT' }]));
    fs.writeFileSync(blobFile, gz.length === image.layers[0].size ? gz : Buffer.concat([gz, Buffer.alloc(Math.max(0, image.layers[0].size - gz.length))]).subarray(0, image.layers[0].size));
    await expect(pull(`${registry.host}/tampered:latest`)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect(fs.existsSync(path.join(berthd.root, 'content', 'blobs', 'sha256', digest))).toBe(false);
    expect(fs.readdirSync(path.join(berthd.root, 'content', 'ingest'))).toEqual([]);
  });

  it('joins concurrent pulls of one image into one download', async () => {
    const image = buildImage([layer([{ type: 'file', path: 'big', content: Buffer.alloc(4 * 1024 * 1024, 7) }], 'none')]);
    await pushImage({ host: registry.host, repository: 'joined' }, image, ['latest']);
    const metricsBefore = berthd.output().length;
    const results = await Promise.all(Array.from({ length: 5 }, () => pull(`${registry.host}/joined:latest`)));
    expect(new Set(results.map((r) => r.image_ref))).toEqual(new Set([image.config.digest]));
    const pulls = berthd.output().slice(metricsBefore).split('\n').filter((l) => l.includes('"pull started"') && l.includes('joined'));
    expect(pulls).toHaveLength(1);
  });

  it('removes an image and frees what only it used, keeping layers other images share', async () => {
    const shared = layer([{ type: 'file', path: 'shared', content: 'shared' }]);
    const one = buildImage([shared, layer([{ type: 'file', path: 'one', content: '1' }])]);
    const two = buildImage([shared, layer([{ type: 'file', path: 'two', content: '2' }])]);
    await pushImage({ host: registry.host, repository: 'one' }, one, ['latest']);
    await pushImage({ host: registry.host, repository: 'two' }, two, ['latest']);
    await pull(`${registry.host}/one:latest`);
    await pull(`${registry.host}/two:latest`);
    const sharedLayer = path.join(berthd.root, 'layers', shared.diffId.slice(7));
    expect(fs.existsSync(sharedLayer)).toBe(true);
    await berthd.client.image.RemoveImage({ image: { image: `${registry.host}/one:latest` } });
    expect((await status(one.config.digest)).image).toBeNull();
    expect(fs.existsSync(sharedLayer)).toBe(true);
    expect(fs.existsSync(path.join(berthd.root, 'content', 'blobs', 'sha256', one.layers[1].digest.slice(7)))).toBe(false);
    await berthd.client.image.RemoveImage({ image: { image: two.config.digest } });
    expect(fs.existsSync(sharedLayer)).toBe(false);
    await berthd.client.image.RemoveImage({ image: { image: two.config.digest } }); // idempotent
  });

  it('reports the image store usage for the kubelet', async () => {
    const res = await berthd.client.image.ImageFsInfo({});
    const fsUsage = res.image_filesystems[0];
    expect(fsUsage.fs_id?.mountpoint).toBe(berthd.root);
    expect(Number(fsUsage.used_bytes?.value)).toBeGreaterThan(busyboxImage().layers[0].size);
    expect(Number(fsUsage.inodes_used?.value)).toBeGreaterThan(200);
  });

  it('reports usage that follows a pull and a removal, also once the answer has been kept', async () => {
    const used = async () => Number((await berthd.client.image.ImageFsInfo({})).image_filesystems[0].used_bytes?.value);
    // The second answer is the kept one; the pull and the removal must each be seen at once (inotify).
    const before = await used();
    expect(await used()).toBe(before);
    const big = buildImage([layer([{ type: 'file', path: 'usage/blob', content: Buffer.alloc(256 * 1024, 7) }])]);
    await pushImage({ host: registry.host, repository: 'usage' }, big, ['latest']);
    await pull(`${registry.host}/usage:latest`);
    // The blob (compressed) and the unpacked layer (its 256 KiB file) are both counted at once.
    expect(await used()).toBeGreaterThanOrEqual(before + 256 * 1024 + big.layers[0].size);
    await berthd.client.image.RemoveImage({ image: { image: `${registry.host}/usage:latest` } });
    expect(await used()).toBe(before);
  });

  it('keeps the image store across a restart', async () => {
    const before = (await berthd.client.image.ListImages({})).images;
    await berthd.stop('SIGKILL');
    berthd.client.close();
    berthd = await startBerthd({ dir: berthd.dir });
    const after = (await berthd.client.image.ListImages({})).images;
    expect(after.map((i) => i.id).sort()).toEqual(before.map((i) => i.id).sort());
    expect(sha256('x')).toMatch(/^sha256:/);
    expect(execFileSync('ls', [path.join(berthd.root, 'content', 'ingest')], { encoding: 'utf8' })).toBe('');
  });
});

describe('image service: concurrent pulls of one image under two names', () => {
  it('downloads the shared blobs once and leaves no connection open', { timeout: 60_000 }, async () => {
    const registry = await startRegistry();
    const berthd = await startBerthd();
    try {
      const image = buildImage([layer([{ type: 'file', path: 'same', content: 'x'.repeat(100_000) }], 'none')]);
      await pushImage({ host: registry.host, repository: 'twin' }, image, ['a', 'b']);
      const [a, b] = await Promise.all(['a', 'b'].map((t) => berthd.client.image.PullImage({ image: { image: `${registry.host}/twin:${t}` } })));
      expect(a.image_ref).toBe(image.config.digest);
      expect(b.image_ref).toBe(image.config.digest);
      const tags = (await berthd.client.image.ImageStatus({ image: { image: image.config.digest } })).image?.repo_tags.sort();
      expect(tags).toEqual([`${registry.host}/twin:a`, `${registry.host}/twin:b`]);
      // Every connection berthd opened to the registry is closed again once idle keep-alive ends (5 s).
      await expect
        .poll(() => execFileSync('ss', ['-tnH', 'state', 'established', `( dport = :${registry.host.split(':')[1]} )`], { encoding: 'utf8' }).trim(), {
          timeout: 20_000,
          interval: 500,
        })
        .toBe('');
    } finally {
      await berthd.cleanup();
      await registry.stop();
    }
  });
});
