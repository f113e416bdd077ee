// `berthd images import`: OCI layouts and docker save archives, loaded while berthd runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBerthd, startBerthd, type BerthdHandle } from '../support/berthd';
import { dockerSaveArchive, ociLayoutArchive } from '../support/oci/archive';
import { buildImage, layer, layerFromTar, sha256 } from '../support/oci/image';
import { tar } from '../support/oci/tar';

describe('image import', () => {
  let berthd: BerthdHandle;
  let dir: string;

  beforeAll(async () => {
    berthd = await startBerthd();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-import-'));
  });

  afterAll(async () => {
    await berthd?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const importFile = (file: string) =>
    runBerthd(['images', 'import', file, '--config', berthd.configPath, '--root', berthd.root, '--state', berthd.state]);

  it('imports an OCI layout archive under its names, visible to the running berthd', async () => {
    const image = buildImage([layer([{ type: 'file', path: 'hello', content: 'oci' }])], { Cmd: ['/hello'] });
    const file = path.join(dir, 'oci.tar');
    fs.writeFileSync(file, ociLayoutArchive([{ name: 'registry.k8s.io/pause:3.9', image }]));
    const res = await importFile(file);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`imported registry.k8s.io/pause:3.9 ${image.config.digest}`);
    const status = await berthd.client.image.ImageStatus({ image: { image: 'registry.k8s.io/pause:3.9' } });
    expect(status.image?.id).toBe(image.config.digest);
    expect(status.image?.repo_digests).toEqual([`registry.k8s.io/pause@${image.manifest.digest}`]);
    const layerDir = path.join(berthd.root, 'layers', image.layers[0].diffId.slice(7), 'diff');
    expect(fs.readFileSync(path.join(layerDir, 'hello'), 'utf8')).toBe('oci');
  });

  it('imports a gzip-compressed docker save archive with a shared layer linked twice', async () => {
    const t = tar([{ type: 'file', path: 'shared', content: 'same' }]);
    const t2 = tar([{ type: 'file', path: 'second', content: 'two' }]);
    const image = buildImage([layerFromTar(t, 'none'), layerFromTar(t2, 'none'), layerFromTar(t, 'none')], { User: '1000' });
    const file = path.join(dir, 'docker.tar.gz');
    fs.writeFileSync(file, zlib.gzipSync(dockerSaveArchive(image, ['busybox:saved'], [t, t2, t])));
    const res = await importFile(file);
    expect(res.code).toBe(0);
    const status = await berthd.client.image.ImageStatus({ image: { image: 'busybox:saved' } });
    expect(status.image?.id).toBe(image.config.digest);
    expect(status.image?.repo_tags).toEqual(['docker.io/library/busybox:saved']);
    expect(status.image?.uid?.value).toBe('1000');
    expect(sha256(t)).toBe(image.layers[0].diffId);
  });

  it('refuses an archive whose blob does not match its name, storing nothing of it', async () => {
    const image = buildImage([layer([{ type: 'file', path: 'x', content: 'x' }])]);
    const good = ociLayoutArchive([{ name: 'example.com/bad:1', image }]);
    const file = path.join(dir, 'bad.tar');
    // Corrupt the config blob's content in place (same length).
    const tampered = Buffer.from(good);
    const at = tampered.indexOf(image.config.data);
    tampered[at + 2] ^= 1;
    fs.writeFileSync(file, tampered);
    const res = await importFile(file);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/digest mismatch/);
    expect((await berthd.client.image.ImageStatus({ image: { image: 'example.com/bad:1' } })).image).toBeNull();
    expect(fs.readdirSync(berthd.root).filter((n) => n.startsWith('import-'))).toEqual([]);
  });

  it('refuses a file that is not an image archive', async () => {
    const file = path.join(dir, 'not.tar');
    fs.writeFileSync(file, tar([{ type: 'file', path: 'README', content: 'hi' }]));
    const res = await importFile(file);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/neither an OCI image layout/);
  });
});
