// berth-unpack --jobs through UnpackWorkers: layer after layer in one process, over one kept-alive
// connection, with "not served" and failed jobs answered like the one-shot helper's.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors';
import { UnpackWorkers } from '../../src/image/unpack/unpack-workers';
import { compress } from '../support/oci/image';
import { tar } from '../support/oci/tar';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

describe('berth-unpack workers', () => {
  let dir: string;
  let server: http.Server;
  let base: string;
  let connections = 0;
  const blobs = new Map<string, Buffer>();

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-workers-'));
    server = http.createServer((req, res) => {
      const blob = blobs.get(req.url ?? '');
      if (!blob) {
        res.writeHead(404, { 'content-length': '9' }).end('not found');
        return;
      }
      res.writeHead(200, { 'content-length': String(blob.length) }).end(blob);
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function layerBlob(i: number): { url: string; blob: Buffer; diffId: string } {
    const tarball = tar([{ type: 'file', path: `f${i}`, content: `layer ${i}\n` }]);
    const blob = compress(tarball, 'gzip');
    const url = `/blobs/${i}`;
    blobs.set(url, blob);
    return { url: base + url, blob, diffId: sha(tarball) };
  }

  function job(url: string, size: number, name: string) {
    const target = path.join(dir, name);
    fs.mkdirSync(target);
    return { request: { url, headers: { authorization: 'Bearer x' }, insecureTls: false }, blob: { size, copyTo: `${target}.blob` }, mediaType: GZIP, targetDir: target, opts: { limits: { maxBytes: 1 << 30, maxEntries: 1000 } } };
  }

  it('unpacks layer after layer in one worker over one connection, and answers a 404 as not served', async () => {
    const workers = new UnpackWorkers({ maxBytes: 1 << 30, maxEntries: 1000 });
    const before = connections;
    try {
      for (let i = 0; i < 4; i++) {
        const l = layerBlob(i);
        const r = await workers.run(job(l.url, l.blob.length, `a${i}`));
        expect(r).toMatchObject({ diffId: l.diffId, blobDigest: sha(l.blob), blobSize: l.blob.length, entries: 1 });
        expect(fs.readFileSync(path.join(dir, `a${i}`, `f${i}`), 'utf8')).toBe(`layer ${i}\n`);
        expect(fs.readFileSync(path.join(dir, `a${i}.blob`))).toEqual(l.blob);
      }
      expect(await workers.run(job(`${base}/missing`, 5, 'a-missing'))).toBeUndefined();
      expect(fs.existsSync(path.join(dir, 'a-missing.blob'))).toBe(false);
      const l = layerBlob(9);
      expect(await workers.run(job(l.url, l.blob.length, 'a9'))).toMatchObject({ diffId: l.diffId });
      expect(workers.size).toBe(1);
      // One connection for the four layers; the 404's body is not read, so one more after it.
      expect(connections - before).toBeLessThanOrEqual(2);
    } finally {
      workers.close();
    }
  });

  it('fails a bad layer with its error, and the next job gets a new worker', async () => {
    const workers = new UnpackWorkers({ maxBytes: 1 << 30, maxEntries: 1000 });
    try {
      blobs.set('/blobs/bad', Buffer.from('this is not gzip at all'));
      await expect(workers.run(job(`${base}/blobs/bad`, 23, 'b-bad'))).rejects.toBeInstanceOf(InvalidArgumentError);
      const l = layerBlob(20);
      expect(await workers.run(job(l.url, l.blob.length, 'b20'))).toMatchObject({ diffId: l.diffId });
    } finally {
      workers.close();
    }
  });

  it('runs jobs on several workers at once', async () => {
    const workers = new UnpackWorkers({ maxBytes: 1 << 30, maxEntries: 1000 });
    try {
      await workers.warm({ insecureTls: false }, 3);
      const layers = Array.from({ length: 6 }, (_x, i) => layerBlob(30 + i));
      const results = await Promise.all(layers.map((l, i) => workers.run(job(l.url, l.blob.length, `c${i}`))));
      expect(results.map((r) => r?.diffId)).toEqual(layers.map((l) => l.diffId));
      expect(workers.size).toBeLessThanOrEqual(6);
    } finally {
      workers.close();
    }
  });

  it('keeps an idle worker for the next job until its idle time is up, then ends it and its connection', async () => {
    const workers = new UnpackWorkers({ maxBytes: 1 << 30, maxEntries: 1000 }, 300);
    const before = connections;
    try {
      const a = layerBlob(40);
      expect(await workers.run(job(a.url, a.blob.length, 'd40'))).toMatchObject({ diffId: a.diffId });
      const b = layerBlob(41);
      expect(await workers.run(job(b.url, b.blob.length, 'd41'))).toMatchObject({ diffId: b.diffId });
      // The second job had the first one's worker and connection.
      expect(workers.size).toBe(1);
      expect(connections - before).toBe(1);
      await expect.poll(() => workers.size, { timeout: 5_000, interval: 50 }).toBe(0);
      const c = layerBlob(42);
      expect(await workers.run(job(c.url, c.blob.length, 'd42'))).toMatchObject({ diffId: c.diffId });
      expect(connections - before).toBe(2);
    } finally {
      workers.close();
    }
    await expect.poll(() => workers.size, { timeout: 5_000, interval: 50 }).toBe(0);
  });
});
