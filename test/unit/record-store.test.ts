import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordStore } from '../../src/state/record-store';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

describe('RecordStore.load', () => {
  it('quarantines torn and corrupt records, reports them, and loads the rest', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-records-'));
    dirs.push(dir);
    const good = new RecordStore<{ id: string; fullName: string }>(dir);
    await good.save({ id: A, fullName: 'k8s_POD_a' });
    fs.writeFileSync(path.join(dir, `${B}.json`), '{"id": "bbbb'); // torn mid-write (no atomic rename would leave this, a disk fault could)
    fs.writeFileSync(path.join(dir, `${C}.json`), JSON.stringify({ id: A, fullName: 'k8s_POD_c' })); // not its own file's id
    fs.writeFileSync(path.join(dir, `.${A}.json.0123456789ab.tmp`), '{'); // a write a crash cut short

    const reported: string[] = [];
    const store = new RecordStore<{ id: string; fullName: string }>(dir);
    const loaded = await store.load((file, reason) => reported.push(`${path.basename(file).split('.json')[0]}: ${reason}`));

    expect(loaded.map((r) => r.id)).toEqual([A]);
    expect(store.ownerOf('k8s_POD_a')).toBe(A);
    expect(reported.map((r) => r.slice(0, 64)).sort()).toEqual([B, C]);
    expect(fs.readdirSync(dir).sort()).toEqual([`${A}.json`, 'quarantine']);
    expect(fs.readdirSync(path.join(dir, 'quarantine')).map((n) => n.slice(0, 64)).sort()).toEqual([B, C]);
    // A second start finds nothing more to quarantine.
    const again: string[] = [];
    await new RecordStore(dir).load((f) => again.push(f));
    expect(again).toEqual([]);
  });
});
