// The test registry (Debian's docker-registry on loopback) and the image builder the image-service
// tests stand on: layers written exactly as given, deterministic images, pushes, layouts, archives.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushTestImages, testImage } from '../../hack/images';
import { BUSYBOX_BINARY, busyboxApplets, busyboxImage } from '../../hack/images/busybox';
import { dockerSaveArchive, ociLayoutArchive } from '../support/oci/archive';
import { compress, decompress, detectCompression } from '../support/oci/compress';
import { hostTree } from '../support/oci/host';
import { buildImage, buildIndex, layer, MEDIA, sha256, type BuiltImage } from '../support/oci/image';
import { writeOciLayout } from '../support/oci/layout';
import { pushImage, pushIndex, PushError } from '../support/oci/push';
import { EPOCH, tar, writeTar, type TarEntry } from '../support/oci/tar';
import { readTar } from '../support/oci/tar-read';
import { listeningAddresses, startRegistry, startRegistryAt, type TestRegistry } from '../support/registry';

const ACCEPT = [MEDIA.ociManifest, MEDIA.dockerManifest, MEDIA.ociIndex, MEDIA.dockerList].join(', ');
const BASIC = `Basic ${Buffer.from('berth:s3cret').toString('base64')}`;

interface Manifest {
  mediaType: string;
  config: { digest: string; mediaType: string };
  layers: Array<{ digest: string; mediaType: string; size: number }>;
}
interface Config {
  architecture: string;
  os: string;
  config: Record<string, unknown>;
  rootfs: { type: string; diff_ids: string[] };
}

const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-registry-test-'));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

describe('test registry', () => {
  let registry: TestRegistry;
  let authRegistry: TestRegistry;
  const auth = { username: 'berth', password: 's3cret' };

  beforeAll(async () => {
    [registry, authRegistry] = await Promise.all([startRegistry(), startRegistry({ auth })]);
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), authRegistry?.stop()]);
  });

  it('listens on its 127.0.0.1 port and nowhere else, and logs into its own dir', async () => {
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(listeningAddresses(registry.pid)).toEqual([registry.host]);
    expect(listeningAddresses(authRegistry.pid)).toEqual([authRegistry.host]);
    const config = fs.readFileSync(path.join(registry.dir, 'config.yml'), 'utf8');
    expect(config).not.toMatch(/0\.0\.0\.0|debug/);
    expect(fs.existsSync(path.join(registry.dir, 'registry.log'))).toBe(true);
    expect((await get(`${registry.url}/v2/`)).status).toBe(200);
  });

  it('pushes busybox, whose manifest and blobs come back with the digests pushed', async () => {
    const digests = await pushTestImages(registry.host, ['busybox']);
    expect(digests.busybox).toBe(busyboxImage().manifest.digest);
    const res = await get(`${registry.url}/v2/busybox/manifests/latest`, { accept: ACCEPT });
    expect(res.status).toBe(200);
    expect(sha256(res.body)).toBe(digests.busybox);
    expect(res.headers.get('docker-content-digest')).toBe(digests.busybox);
    const manifest = JSON.parse(res.body.toString()) as Manifest;
    expect(manifest.mediaType).toBe(MEDIA.ociManifest);
    expect(manifest.layers).toHaveLength(1);
    const blobs = new Map<string, Buffer>();
    for (const { digest } of [manifest.config, ...manifest.layers]) {
      const blob = await get(`${registry.url}/v2/busybox/blobs/${digest}`);
      expect(blob.status).toBe(200);
      expect(sha256(blob.body)).toBe(digest);
      blobs.set(digest, blob.body);
    }
    const config = JSON.parse((blobs.get(manifest.config.digest) as Buffer).toString()) as Config;
    expect([config.os, config.architecture]).toEqual(['linux', 'amd64']);
    expect(config.config.Cmd).toEqual(['sh']);
    const layerTar = zlib.gunzipSync(blobs.get(manifest.layers[0].digest) as Buffer);
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: [sha256(layerTar)] });

    const entries = new Map(readTar(layerTar).map((e) => [e.path, e]));
    const bin = entries.get('bin/busybox');
    expect(bin?.content.equals(fs.readFileSync(BUSYBOX_BINARY))).toBe(true);
    expect(bin?.mode).toBe(0o755);
    expect(entries.get('bin/sh')).toMatchObject({ typeflag: '2', linkname: 'busybox' });
    expect(busyboxApplets().length).toBeGreaterThan(100);
    for (const applet of busyboxApplets()) expect(entries.get(`bin/${applet}`)?.linkname).toBe('busybox');
    expect(entries.get('etc/passwd')?.content.toString()).toMatch(/^berth:x:1000:1000:/m);
    expect(entries.get('etc/passwd')?.content.toString()).toMatch(/^nobody:x:65534:/m);
    expect(entries.get('etc/group')?.content.toString()).toMatch(/^berth:x:1000:/m);
    expect(entries.get('tmp/')).toMatchObject({ typeflag: '5', mode: 0o1777 });
    expect([...entries.values()].every((e) => e.mtime === EPOCH)).toBe(true);

    const tagged = await fetch(`${registry.url}/v2/busybox/manifests/1.36`, { method: 'HEAD', headers: { accept: ACCEPT } });
    expect(tagged.headers.get('docker-content-digest')).toBe(digests.busybox);
  });

  it('an auth registry refuses anonymous pushes and wrong passwords (401) and accepts the credentials', async () => {
    const image = busyboxImage();
    const target = { host: authRegistry.host, repository: 'busybox' };
    await expect(pushImage(target, image, ['latest'])).rejects.toMatchObject({ status: 401 });
    await expect(pushImage({ ...target, auth: { ...auth, password: 'wrong' } }, image, ['latest'])).rejects.toThrow(PushError);
    expect((await get(`${authRegistry.url}/v2/busybox/tags/list`, { authorization: BASIC })).status).toBe(404);

    expect(await pushImage({ ...target, auth }, image, ['latest'])).toBe(image.manifest.digest);
    const anon = await get(`${authRegistry.url}/v2/busybox/manifests/latest`, { accept: ACCEPT });
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toMatch(/^Basic realm="berth-test"/);
    const authed = await get(`${authRegistry.url}/v2/busybox/manifests/latest`, { accept: ACCEPT, authorization: BASIC });
    expect(authed.status).toBe(200);
    expect(sha256(authed.body)).toBe(image.manifest.digest);
  });

  it('pushes Docker schema 2 images and a multi-platform list, served back with their media types', async () => {
    const amd64 = buildImage([layer([{ type: 'file', path: 'arch', content: 'amd64' }], 'gzip', 'docker')], { Cmd: ['/arch'] }, { style: 'docker' });
    const arm64 = buildImage([layer([{ type: 'file', path: 'arch', content: 'arm64' }], 'gzip', 'docker')], {}, { style: 'docker', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const list = buildIndex([amd64, arm64], 'docker');
    const digest = await pushIndex({ host: registry.host, repository: 'multi' }, [amd64, arm64], list, ['latest']);
    expect(digest).toBe(list.digest);
    const res = await get(`${registry.url}/v2/multi/manifests/latest`, { accept: ACCEPT });
    expect(res.headers.get('content-type')).toBe(MEDIA.dockerList);
    const body = JSON.parse(res.body.toString()) as { manifests: Array<{ digest: string; platform: { architecture: string; variant?: string } }> };
    expect(body.manifests.map((m) => [m.digest, m.platform.architecture, m.platform.variant])).toEqual([
      [amd64.manifest.digest, 'amd64', undefined],
      [arm64.manifest.digest, 'arm64', 'v8'],
    ]);
    const one = await get(`${registry.url}/v2/multi/manifests/${arm64.manifest.digest}`, { accept: ACCEPT });
    expect(one.headers.get('content-type')).toBe(MEDIA.dockerManifest);
    expect((JSON.parse(one.body.toString()) as Manifest).layers[0].mediaType).toBe(MEDIA.dockerLayer);
  });

  it('stop kills the registry by pid and removes its dir', async () => {
    const extra = await startRegistry();
    await extra.stop();
    expect(() => process.kill(extra.pid, 0)).toThrow(/ESRCH/);
    expect(fs.existsSync(extra.dir)).toBe(false);
    await expect(fetch(`${extra.url}/v2/`)).rejects.toThrow();
  });

  it('fails to start on a taken port with the end of its log in the error', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      await expect(startRegistryAt(`127.0.0.1:${port}`)).rejects.toThrow(/address already in use/);
      await expect(startRegistryAt(`0.0.0.0:${port}`)).rejects.toThrow(/127\.0\.0\.1 only/);
    } finally {
      blocker.close();
    }
  });
});

describe('layer tarballs', () => {
  const everyType: TarEntry[] = [
    { type: 'dir', path: 'etc/', mode: 0o750, uid: 5, gid: 6, mtime: 1_600_000_000 },
    { type: 'file', path: 'etc/conf', content: 'hello', mode: 0o640, uid: 7, gid: 8, mtime: 1_500_000_000, xattrs: { 'user.note': 'n' } },
    { type: 'file', path: `deep/${'x'.repeat(150)}/file`, content: 'long' },
    { type: 'file', path: 'bigid', content: '', uid: 3_000_000, gid: 3_000_001 },
    { type: 'symlink', path: 'etc/link', target: `/etc/${'t'.repeat(120)}` },
    { type: 'hardlink', path: 'etc/hard', target: 'etc/conf' },
    { type: 'char', path: 'null', major: 1, minor: 3, mode: 0o666 },
    { type: 'block', path: 'loop', major: 7, minor: 0, mode: 0o660 },
    { type: 'fifo', path: 'pipe', mode: 0o600 },
    { type: 'file', path: 'suid', content: '#!', mode: 0o4755, uid: 1000, gid: 50 },
    { type: 'whiteout', path: 'etc/gone' },
    { type: 'opaque', path: 'etc' },
  ];

  it('writes every entry type so that GNU tar extracts it as given', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'layer.tar');
    expect(writeTar(file, everyType)).toBe(tar(everyType).length);
    expect(fs.readFileSync(file).equals(tar(everyType))).toBe(true);
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    execFileSync('tar', ['-x', '-p', '--numeric-owner', '--xattrs', '--xattrs-include=user.*', '-f', file, '-C', out], { stdio: 'pipe' });
    const st = (p: string) => fs.lstatSync(path.join(out, p));
    // (GNU tar restamps a directory it extracts more into; readTar checks the written mtime.)
    expect([st('etc').mode & 0o7777, st('etc').uid, st('etc').gid]).toEqual([0o750, 5, 6]);
    expect([st('etc/conf').mode & 0o7777, st('etc/conf').uid, st('etc/conf').gid, st('etc/conf').mtimeMs / 1000]).toEqual([0o640, 7, 8, 1_500_000_000]);
    expect(fs.readFileSync(path.join(out, 'etc/conf'), 'utf8')).toBe('hello');
    const getxattr = `import os, sys; sys.stdout.write(os.getxattr(sys.argv[1], 'user.note').decode())`;
    expect(execFileSync('python3', ['-c', getxattr, path.join(out, 'etc/conf')], { encoding: 'utf8', stdio: 'pipe' })).toBe('n');
    expect(fs.readFileSync(path.join(out, `deep/${'x'.repeat(150)}/file`), 'utf8')).toBe('long');
    expect([st('bigid').uid, st('bigid').gid]).toEqual([3_000_000, 3_000_001]);
    expect(fs.readlinkSync(path.join(out, 'etc/link'))).toBe(`/etc/${'t'.repeat(120)}`);
    expect(st('etc/hard').ino).toBe(st('etc/conf').ino);
    expect(st('null').isCharacterDevice() && st('null').rdev === fs.statSync('/dev/null').rdev).toBe(true);
    expect(st('loop').isBlockDevice()).toBe(true);
    expect(st('pipe').isFIFO()).toBe(true);
    expect([st('suid').mode & 0o7777, st('suid').uid, st('suid').gid]).toEqual([0o4755, 1000, 50]);
    expect(st('etc/.wh.gone').size).toBe(0);
    expect(st('etc/.wh..wh..opq').isFile()).toBe(true);
  });

  it('reads back what it wrote, PAX records applied', () => {
    const back = readTar(tar(everyType));
    expect(back.map((e) => e.path)).toEqual([
      'etc/', 'etc/conf', `deep/${'x'.repeat(150)}/file`, 'bigid', 'etc/link', 'etc/hard', 'null', 'loop', 'pipe', 'suid', 'etc/.wh.gone', 'etc/.wh..wh..opq',
    ]);
    expect(back.map((e) => e.typeflag).join('')).toBe('500021346000');
    expect(back[0].mtime).toBe(1_600_000_000);
    expect(back[1].xattrs).toEqual({ 'user.note': 'n' });
    expect(back[3]).toMatchObject({ uid: 3_000_000, gid: 3_000_001 });
    expect(back[6]).toMatchObject({ devmajor: 1, devminor: 3, mode: 0o666 });
  });

  it('writes hostile entries verbatim: .. names, absolute paths, links out of the tree', () => {
    const longEscape = `${'../'.repeat(40)}etc/shadow`;
    const t = tar([
      { type: 'file', path: '../escape', content: 'x' },
      { type: 'file', path: '/etc/absolute', content: 'y' },
      { type: 'symlink', path: 'evil', target: '/' },
      { type: 'hardlink', path: 'passwd', target: '../../../../etc/passwd' },
      { type: 'file', path: longEscape, content: 'z' },
      { type: 'file', path: 'a/./b//../../../c', content: '' },
    ]);
    // The first header, byte for byte: the name field holds exactly `../escape`.
    expect(t.subarray(0, 100).toString('latin1')).toBe('../escape'.padEnd(100, '\0'));
    const back = readTar(t);
    expect(back.map((e) => [e.path, e.linkname])).toEqual([
      ['../escape', ''],
      ['/etc/absolute', ''],
      ['evil', '/'],
      ['passwd', '../../../../etc/passwd'],
      [longEscape, ''],
      ['a/./b//../../../c', ''],
    ]);
    expect(back[0].headerName).toBe('../escape');
    expect(t.subarray(back[2].offset + 157, back[2].offset + 257).toString('latin1')).toBe('/'.padEnd(100, '\0'));
    expect(back[4].pax.path).toBe(longEscape);
  });

  it('writes raw headers as given, even a lying size and an unknown type', () => {
    const t = tar([
      { type: 'raw', path: 'weird', typeflag: 'Z', content: 'abc', size: 3 },
      { type: 'raw', path: 'liar', typeflag: '0', content: 'short', size: 1000 },
    ]);
    const second = 512 + 512;
    expect(String.fromCharCode(t[156])).toBe('Z');
    expect(t.subarray(second + 124, second + 136).toString('latin1')).toBe('00000001750\0');
    const back = readTar(t);
    expect(back.map((e) => [e.path, e.typeflag, e.size])).toEqual([
      ['weird', 'Z', 3],
      ['liar', '0', 1000],
    ]);
    expect(back[1].content.subarray(0, 5).toString()).toBe('short');
    expect(() => readTar(tar([{ type: 'raw', path: 'cut', typeflag: '0', content: 'x', size: 5000 }]))).toThrow(/truncated/);
  });

  it('builds entries from a host tree: sorted, root-owned, EPOCH, hard links by inode, sockets skipped', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub/b'), 'b', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'a'), 'a');
    fs.linkSync(path.join(dir, 'a'), path.join(dir, 'z-hard'));
    fs.symlinkSync('../outside', path.join(dir, 'link'));
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    const sock = net.createServer();
    await new Promise<void>((resolve) => sock.listen(path.join(dir, 'sock'), resolve));
    try {
      const entries = hostTree(dir, { prefix: 'root' });
      expect(entries.map((e) => [e.type, e.path])).toEqual([
        ['dir', 'root/'],
        ['file', 'root/a'],
        ['fifo', 'root/fifo'],
        ['symlink', 'root/link'],
        ['dir', 'root/sub/'],
        ['file', 'root/sub/b'],
        ['hardlink', 'root/z-hard'],
      ]);
      const back = readTar(tar(entries));
      expect(back.find((e) => e.path === 'root/z-hard')?.linkname).toBe('root/a');
      expect(back.find((e) => e.path === 'root/link')?.linkname).toBe('../outside');
      expect(back.find((e) => e.path === 'root/sub/b')).toMatchObject({ mode: 0o600, uid: 0, gid: 0, mtime: EPOCH });
      expect(tar(hostTree(dir)).equals(tar(hostTree(dir)))).toBe(true);
    } finally {
      sock.close();
    }
  });

  it('compresses gzip, zstd and none deterministically, the diff ID always that of the tar', () => {
    const raw = tar(everyType);
    for (const c of ['gzip', 'zstd', 'none'] as const) {
      const a = layer(everyType, c);
      const b = layer(everyType, c);
      expect(a.digest).toBe(b.digest);
      expect(a.diffId).toBe(sha256(raw));
      expect(a.mediaType).toBe(MEDIA.ociLayer[c]);
      expect(detectCompression(a.data)).toBe(c);
      expect(decompress(a.data, c).equals(raw)).toBe(true);
      expect(a.digest).toBe(sha256(compress(raw, c)));
    }
  });
});

describe('images, layouts and archives', () => {
  const config = {
    Env: ['PATH=/bin', 'A=b'],
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: ['echo hi'],
    User: '1000:1000',
    WorkingDir: '/work',
    Labels: { 'org.example': 'yes' },
    StopSignal: 'SIGQUIT',
  };
  const build = (): BuiltImage =>
    buildImage([layer([{ type: 'file', path: 'one', content: '1' }]), layer([{ type: 'file', path: 'two', content: '2' }], 'zstd')], config);

  it('builds the same image twice with the same digests, busybox included', () => {
    expect(busyboxImage().manifest.digest).toBe(busyboxImage().manifest.digest);
    expect(testImage('busybox').build().manifest.digest).toBe(busyboxImage().manifest.digest);
    expect(build().manifest.digest).toBe(build().manifest.digest);
    expect(build().manifest.digest).not.toBe(buildImage(build().layers, { ...config, User: '0' }).manifest.digest);
  });

  it('writes the config and manifest a runtime reads', () => {
    const image = build();
    const c = JSON.parse(image.config.data.toString()) as Config;
    expect(c).toMatchObject({ architecture: 'amd64', os: 'linux', config });
    expect(c.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
    expect(c.rootfs.diff_ids[1]).toBe(sha256(decompress(image.layers[1].data, 'zstd')));
    const m = JSON.parse(image.manifest.data.toString()) as Manifest;
    expect(m.mediaType).toBe(MEDIA.ociManifest);
    expect(m.config).toEqual({ mediaType: MEDIA.ociConfig, digest: image.config.digest, size: image.config.size });
    expect(m.layers.map((l) => l.mediaType)).toEqual([MEDIA.ociLayer.gzip, MEDIA.ociLayer.zstd]);
    expect(image.manifest.digest).toBe(sha256(image.manifest.data));
  });

  it('writes an OCI image layout directory, and the same layout as a tar', () => {
    const image = build();
    const dir = tmpDir();
    writeOciLayout(dir, [{ name: 'example.com/app:v1', image }]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0].digest).toBe(image.manifest.digest);
    expect(index.manifests[0].annotations).toEqual({ 'io.containerd.image.name': 'example.com/app:v1', 'org.opencontainers.image.ref.name': 'v1' });
    const blobs = fs.readdirSync(path.join(dir, 'blobs/sha256')).sort();
    expect(blobs).toEqual([image.config, image.manifest, ...image.layers].map((b) => b.digest.slice(7)).sort());
    for (const hex of blobs) expect(sha256(fs.readFileSync(path.join(dir, 'blobs/sha256', hex)))).toBe(`sha256:${hex}`);

    const archived = readTar(ociLayoutArchive([{ name: 'example.com/app:v1', image }]));
    const files = archived.filter((x) => x.typeflag === '0');
    expect(files).toHaveLength(blobs.length + 2);
    for (const e of files) expect(e.content.equals(fs.readFileSync(path.join(dir, e.path)))).toBe(true);
  });

  it('writes a docker save archive whose layer.tar files are the uncompressed layers', () => {
    const shared = layer([{ type: 'file', path: 'shared', content: 'same' }]);
    const image = buildImage([shared, layer([{ type: 'file', path: 'x', content: 'x' }], 'zstd'), shared], config);
    const entries = readTar(dockerSaveArchive(image, ['example.com/app:v1']));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    const [manifest] = JSON.parse((byPath.get('manifest.json')?.content ?? Buffer.from('[]')).toString()) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    expect(manifest.RepoTags).toEqual(['example.com/app:v1']);
    expect(byPath.get(manifest.Config)?.content.equals(image.config.data)).toBe(true);
    const layerData = manifest.Layers.map((p) => {
      const e = byPath.get(p);
      return e?.typeflag === '2' ? byPath.get(path.posix.normalize(path.posix.join(path.posix.dirname(p), e.linkname))) : e;
    });
    expect(byPath.get(manifest.Layers[2])?.typeflag).toBe('2');
    expect(layerData.map((e) => (e ? sha256(e.content) : ''))).toEqual(image.layers.map((l) => l.diffId));
    expect(JSON.parse(byPath.get('repositories')?.content.toString() ?? '{}')).toEqual({ 'example.com/app': { v1: manifest.Layers[2].split('/')[0] } });
  });
});
