// The CNI network config lookup cached until its directory changes (an inotify watch).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NetworkConfigSource } from '../../src/network/cni-config';

const conflist = (name: string) => JSON.stringify({ cniVersion: '1.0.0', name, plugins: [{ type: 'loopback' }] });
const nameOf = async (source: NetworkConfigSource) => {
  const lookup = await source.lookup();
  return lookup.ready ? lookup.network.name : undefined;
};

describe('NetworkConfigSource', () => {
  let dir: string;
  let source: NetworkConfigSource;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cniconf-'));
  });
  afterEach(() => {
    source?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers from its cache until the dir changes: a file edited in place, added, removed', async () => {
    fs.writeFileSync(path.join(dir, '10-a.conflist'), conflist('first'));
    source = new NetworkConfigSource(dir, '');
    expect(await nameOf(source)).toBe('first');
    const first = await source.lookup();
    expect(await source.lookup()).toBe(first); // the very same object: not read again
    fs.writeFileSync(path.join(dir, '10-a.conflist'), conflist('edited'));
    await expect.poll(() => nameOf(source)).toBe('edited');
    fs.writeFileSync(path.join(dir, '05-b.conflist'), conflist('earlier'));
    await expect.poll(() => nameOf(source)).toBe('earlier');
    fs.rmSync(path.join(dir, '05-b.conflist'));
    fs.rmSync(path.join(dir, '10-a.conflist'));
    await expect.poll(() => nameOf(source)).toBeUndefined();
  });

  it('reads a dir that does not exist yet on every lookup, and finds it once it does', async () => {
    const later = path.join(dir, 'later');
    source = new NetworkConfigSource(later, '');
    expect(await nameOf(source)).toBeUndefined();
    fs.mkdirSync(later);
    fs.writeFileSync(path.join(later, '10-x.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'x', type: 'loopback' }));
    expect(await nameOf(source)).toBe('x');
  });
});
