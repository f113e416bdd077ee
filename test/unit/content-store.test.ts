import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/image/content-store';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('content store', () => {
  let dir: string;
  let store: ContentStore;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-content-'));
    store = new ContentStore(dir);
    await store.recover();
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('joins a second ingest of the same blob and closes the stream it does not need', async () => {
    const data = Buffer.from('blob data');
    const first = new PassThrough();
    const firstDone = store.ingest(digestOf(data), data.length, first);
    const second = new PassThrough();
    const secondDone = store.ingest(digestOf(data), data.length, second);
    expect(second.destroyed).toBe(true);
    first.end(data);
    await Promise.all([firstDone, secondDone]);
    expect(fs.readFileSync(store.path(digestOf(data)))).toEqual(data);
  });

  it('refuses a blob larger or different than announced and keeps nothing of it', async () => {
    const data = Buffer.from('exact');
    await expect(store.ingest(digestOf(data), 3, Readable.from([data]))).rejects.toThrow(/larger than its expected 3 bytes/);
    await expect(store.ingest(digestOf(Buffer.from('other')), data.length, Readable.from([data]))).rejects.toThrow(/digest mismatch/);
    expect(await store.list()).toEqual([]);
    expect(fs.readdirSync(store.ingestDir)).toEqual([]);
  });

  it('drops unverified downloads a crash left behind when it recovers', async () => {
    fs.writeFileSync(path.join(store.ingestDir, 'partial'), 'half');
    await store.recover();
    expect(fs.readdirSync(store.ingestDir)).toEqual([]);
  });
});
