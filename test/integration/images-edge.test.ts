// Pull edge cases: bearer-token registries, stalled downloads, and a disk that fills up mid-pull.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mount, umount2, MNT_DETACH } from '../../src/native';
import { startBerthd, type BerthdHandle } from '../support/berthd';
import { startFakeRegistry, type FakeRegistry } from '../support/fake-registry';
import { buildImage, layer } from '../support/oci/image';
import { pushImage } from '../support/oci/push';
import { startRegistry, type TestRegistry } from '../support/registry';
import { until } from '../support/until';
import { createHash, randomBytes } from 'node:crypto';

describe('pull edge cases', () => {
  const image = buildImage([layer([{ type: 'file', path: 'data', content: randomBytes(256 * 1024) }])]);
  let berthd: BerthdHandle;
  const fakes: FakeRegistry[] = [];

  beforeAll(async () => {
    berthd = await startBerthd({ configToml: '[image]\npull_progress_timeout_seconds = 2\n' });
  });

  afterAll(async () => {
    await berthd?.cleanup();
    await Promise.all(fakes.map((f) => f.stop()));
  });

  it('gets a bearer token from the realm with the credentials, and reuses it', async () => {
    const bearer = { username: 'robot', password: 'hunter2', token: 'tok-123' };
    const fake = await startFakeRegistry('app', image, { bearer });
    fakes.push(fake);
    const ref = `${fake.host}/app:latest`;
    await expect(berthd.client.image.PullImage({ image: { image: ref } })).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: expect.stringContaining('authentication failed'),
    });
    const res = await berthd.client.image.PullImage({ image: { image: ref }, auth: { username: 'robot', password: 'hunter2' } });
    expect(res.image_ref).toBe(image.config.digest);
    // One token for the whole pull: manifest, config and layer all used the cached token.
    expect(fake.tokenRequests).toBe(2);
    expect(berthd.output()).not.toContain('hunter2');
    expect(berthd.output()).not.toContain('tok-123');
  });

  it('cancels a pull that stops receiving data, with a clear error, and leaves nothing half-done', async () => {
    const stalled = buildImage([layer([{ type: 'file', path: 'slow', content: randomBytes(512 * 1024) }], 'none')]);
    const fake = await startFakeRegistry('slow', stalled, { stallAfterBytes: 100_000 });
    fakes.push(fake);
    const started = Date.now();
    await expect(berthd.client.image.PullImage({ image: { image: `${fake.host}/slow:latest` } })).rejects.toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
      details: expect.stringMatching(/no data received for 2s/),
    });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(fs.readdirSync(path.join(berthd.root, 'content', 'ingest'))).toEqual([]);
    expect(fs.readdirSync(path.join(berthd.root, 'layers')).filter((n) => n.startsWith('tmp-'))).toEqual([]);
  });
});

/** PIDs of parent's children whose command name is `name`. */
function childrenNamed(parent: number, name: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === name && ppid === parent) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('blob downloads over plain HTTP (berth-unpack fetches them itself)', () => {
  let berthd: BerthdHandle;
  const fakes: FakeRegistry[] = [];
  const image = buildImage([layer([{ type: 'file', path: 'data', content: randomBytes(256 * 1024) }])]);

  beforeAll(async () => {
    berthd = await startBerthd();
  });

  afterAll(async () => {
    await berthd?.cleanup();
    await Promise.all(fakes.map((f) => f.stop()));
  });

  it('follows a redirect of the blob to storage, without the registry\'s credentials', async () => {
    const fake = await startFakeRegistry('moved', image, { redirectBlobs: true });
    fakes.push(fake);
    const res = await berthd.client.image.PullImage({ image: { image: `${fake.host}/moved:latest` } });
    expect(res.image_ref).toBe(image.config.digest);
    // berth-unpack asked once and followed the 307 itself.
    expect(fake.requests.filter((r) => r === `GET /v2/moved/blobs/${image.layers[0].digest}`)).toHaveLength(1);
    expect(fake.requests).toContain(`GET /storage/${image.layers[0].digest}`);
    const status = await berthd.client.image.ImageStatus({ image: { image: `${fake.host}/moved:latest` } });
    expect(status.image?.id).toBe(image.config.digest);
  });

  it('falls back to berthd\'s own client when the registry does not serve the blob to berth-unpack', async () => {
    const fresh = buildImage([layer([{ type: 'file', path: 'data', content: randomBytes(128 * 1024) }])]);
    const fake = await startFakeRegistry('hiccup', fresh, { failLayerOnceWith: 503 });
    fakes.push(fake);
    const res = await berthd.client.image.PullImage({ image: { image: `${fake.host}/hiccup:latest` } });
    expect(res.image_ref).toBe(fresh.config.digest);
    // Asked by berth-unpack (503: not served), then by berthd.
    expect(fake.requests.filter((r) => r === `GET /v2/hiccup/blobs/${fresh.layers[0].digest}`)).toHaveLength(2);
  });

  it('counts a blob berth-unpack fetched itself in the pull\'s bytes', async () => {
    const fresh = buildImage([layer([{ type: 'file', path: 'data', content: randomBytes(300 * 1024) }])]);
    const fake = await startFakeRegistry('counted', fresh);
    fakes.push(fake);
    await berthd.client.image.PullImage({ image: { image: `${fake.host}/counted:latest` } });
    const done = berthd
      .output()
      .split('\n')
      .filter((l) => l.includes('"pull done"') && l.includes('counted'))
      .map((l) => JSON.parse(l) as { bytes: number });
    expect(done.map((d) => d.bytes)).toEqual([fresh.config.size + fresh.layers[0].size]);
    // One GET of the layer: berth-unpack's own, not a second one by berthd.
    expect(fake.requests.filter((r) => r === `GET /v2/counted/blobs/${fresh.layers[0].digest}`)).toHaveLength(1);
  });

  it('takes its berth-unpack helpers along when berthd is killed', async () => {
    const own = await startBerthd();
    try {
      const slow = buildImage([layer([{ type: 'file', path: 'slow', content: randomBytes(512 * 1024) }], 'none')]);
      const fake = await startFakeRegistry('orphan', slow, { stallAfterBytes: 100_000 });
      fakes.push(fake);
      const pull = own.client.image.PullImage({ image: { image: `${fake.host}/orphan:latest` } }).catch(() => undefined);
      const helpers = await until('berthd to start berth-unpack', () => {
        const found = childrenNamed(own.process.pid ?? -1, 'berth-unpack');
        return found.length > 0 && found;
      });
      await own.stop('SIGKILL');
      await pull;
      await until('berth-unpack to go with berthd', () => helpers.every((pid) => !fs.existsSync(`/proc/${pid}`)), 5000);
    } finally {
      await own.cleanup();
    }
  });

  it('fails a blob cut off mid-way as UNAVAILABLE and leaves nothing half-done', async () => {
    const fresh = buildImage([layer([{ type: 'file', path: 'data', content: randomBytes(256 * 1024) }])]);
    const fake = await startFakeRegistry('cut', fresh, { cutAfterBytes: 100_000 });
    fakes.push(fake);
    await expect(berthd.client.image.PullImage({ image: { image: `${fake.host}/cut:latest` } })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/closed the connection \d+ bytes before the end of the blob/),
    });
    expect(fs.readdirSync(path.join(berthd.root, 'content', 'ingest'))).toEqual([]);
    expect(fs.readdirSync(path.join(berthd.root, 'layers')).filter((n) => n.startsWith('tmp-'))).toEqual([]);
  });
});

describe('a disk that fills up during a pull', () => {
  let registry: TestRegistry;
  let berthd: BerthdHandle | undefined;
  let dir: string;

  beforeAll(async () => {
    registry = await startRegistry();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-full-'));
    fs.mkdirSync(path.join(dir, 'root'), { recursive: true });
    mount('tmpfs', path.join(dir, 'root'), 'tmpfs', 0, 'size=6m');
  });

  afterAll(async () => {
    berthd?.client.close();
    await berthd?.stop('SIGKILL');
    umount2(path.join(dir, 'root'), MNT_DETACH);
    fs.rmSync(dir, { recursive: true, force: true });
    await registry?.stop();
  });

  it('fails with a clear error, keeps the store consistent, and succeeds once space is free', async () => {
    const big = buildImage([layer([{ type: 'file', path: 'big', content: randomBytes(2 * 1024 * 1024) }], 'none')]);
    await pushImage({ host: registry.host, repository: 'big' }, big, ['latest']);
    berthd = await startBerthd({ dir, args: [] });
    const filler = path.join(berthd.root, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(3 * 1024 * 1024));
    await expect(berthd.client.image.PullImage({ image: { image: `${registry.host}/big:latest` } })).rejects.toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: expect.stringContaining('no space left on device'),
    });
    expect((await berthd.client.image.ListImages({})).images).toEqual([]);
    expect(fs.readdirSync(path.join(berthd.root, 'content', 'ingest'))).toEqual([]);
    expect(fs.readdirSync(path.join(berthd.root, 'layers')).filter((n) => n.startsWith('tmp-'))).toEqual([]);
    fs.rmSync(filler);
    const res = await berthd.client.image.PullImage({ image: { image: `${registry.host}/big:latest` } });
    expect(res.image_ref).toBe(big.config.digest);
  });
});

describe('a registry over TLS with its own CA', () => {
  let plain: TestRegistry;
  let tls: TestRegistry;
  let berthd: BerthdHandle | undefined;

  beforeAll(async () => {
    plain = await startRegistry();
    tls = await startRegistry({ tls: true, dataDir: path.join(plain.dir, 'data') });
  });

  afterAll(async () => {
    await berthd?.cleanup();
    await Promise.all([tls?.stop(), plain?.stop()]);
  });

  it('is refused without the CA and pulled with registries.<host>.ca_file', async () => {
    const image = buildImage([layer([{ type: 'file', path: 'tls', content: 'secure' }])]);
    await pushImage({ host: plain.host, repository: 'secure' }, image, ['latest']);
    const mirrorConfig = (withCa: boolean) => `
[image.registries."secure.example"]
mirrors = ["https://${tls.host}"]
${withCa ? `[image.registries."${tls.host}"]\nca_file = "${path.join(tls.dir, 'ca.pem')}"\n` : ''}`;
    berthd = await startBerthd({ configToml: mirrorConfig(false) });
    await expect(berthd.client.image.PullImage({ image: { image: 'secure.example/secure:latest' } })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/certificate/i),
    });
    await berthd.cleanup();
    berthd = await startBerthd({ configToml: mirrorConfig(true) });
    const res = await berthd.client.image.PullImage({ image: { image: 'secure.example/secure:latest' } });
    expect(res.image_ref).toBe(image.config.digest);
  });
});

describe('start-up reconciliation of the image store', () => {
  it('frees blobs and layers that a pull or removal cut short by a crash left, and counts the repairs', async () => {
    const first = await startBerthd();
    try {
      await first.stop('SIGKILL');
      // What a pull killed between storing a blob and writing the image record leaves: a verified blob
      // and an unpacked layer that no record names.
      const content = Buffer.from('a blob no image uses');
      const hex = createHash('sha256').update(content).digest('hex');
      const blob = path.join(first.root, 'content', 'blobs', 'sha256', hex);
      fs.mkdirSync(path.dirname(blob), { recursive: true });
      fs.writeFileSync(blob, content);
      const layer = path.join(first.root, 'layers', 'f'.repeat(64));
      fs.mkdirSync(path.join(layer, 'diff'), { recursive: true });
      fs.writeFileSync(path.join(layer, 'layer.json'), JSON.stringify({ diffId: `sha256:${'e'.repeat(64)}`, size: 0, entries: 0 }));
      const again = await startBerthd({ dir: first.dir });
      try {
        expect(fs.existsSync(blob)).toBe(false);
        expect(fs.existsSync(layer)).toBe(false);
        expect(again.output()).toMatch(/"repair":"image-orphan-blob"/);
        expect(again.output()).toMatch(/"repair":"image-orphan-layer"/);
      } finally {
        await again.stop('SIGKILL');
      }
    } finally {
      await first.cleanup();
    }
  });
});
