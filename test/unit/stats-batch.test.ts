// The batched reads behind the stats RPCs: native readFiles (optionally inside a network namespace) and
// diskUsage, and the parsing of cgroup texts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diskUsage, readFiles } from '../../src/native';
import { NET_DEV_IN_NETNS, parseMemory, parseNetDev } from '../../src/container/stats';

describe('readFiles', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-read-'));
    fs.writeFileSync(path.join(dir, 'a'), 'alpha\n');
    fs.writeFileSync(path.join(dir, 'big'), 'x'.repeat(100_000));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads every file in order, null for what cannot be read, and cuts at maxBytes', async () => {
    const texts = await readFiles([path.join(dir, 'a'), path.join(dir, 'missing'), '', path.join(dir, 'big'), dir], null, 70_000);
    expect(texts[0]).toBe('alpha\n');
    expect(texts[1]).toBeNull();
    expect(texts[2]).toBeNull();
    expect(texts[3]).toBe('x'.repeat(70_000));
    expect(texts[4]).toBeNull(); // a directory cannot be read
  });

  it("reads /proc/thread-self/net/dev inside a network namespace, and the caller's own namespace is unchanged", async () => {
    const name = `berth-rf-${process.pid}`;
    execFileSync('ip', ['netns', 'add', name]);
    try {
      // A veth pair: probe0 inside the namespace, its peer on the host (deleted with the namespace).
      execFileSync('ip', ['link', 'add', `rfh${process.pid % 100000}`, 'type', 'veth', 'peer', 'name', 'probe0', 'netns', name]);
      const [inside, outside] = await readFiles([NET_DEV_IN_NETNS, NET_DEV_IN_NETNS], [`/run/netns/${name}`, null]);
      expect(parseNetDev(inside).map((i) => i.name)).toEqual(['probe0']);
      expect(parseNetDev(outside).map((i) => i.name)).not.toContain('probe0');
      // The pool thread went back: a second round without a namespace sees the host's interfaces again.
      const again = await readFiles(Array(8).fill(NET_DEV_IN_NETNS));
      for (const t of again) expect(parseNetDev(t).map((i) => i.name)).not.toContain('probe0');
    } finally {
      execFileSync('ip', ['netns', 'del', name]);
    }
  });

  it('answers null for a namespace path that is not one', async () => {
    expect(await readFiles([NET_DEV_IN_NETNS], ['/nonexistent/ns'])).toEqual([null]);
  });
});

describe('diskUsage', () => {
  it('counts bytes and inodes as du does: hard links once, symlinks not followed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-du-'));
    try {
      fs.mkdirSync(path.join(dir, 'sub'));
      fs.writeFileSync(path.join(dir, 'sub', 'f'), Buffer.alloc(64 * 1024, 1));
      fs.linkSync(path.join(dir, 'sub', 'f'), path.join(dir, 'hard'));
      fs.symlinkSync('/usr', path.join(dir, 'link'));
      const [usage, missing] = await diskUsage([dir, path.join(dir, 'nope')]);
      const du = execFileSync('du', ['-s', '--block-size=1', dir], { encoding: 'utf8' }).split('\t')[0];
      // dir, sub, f (once), link: four inodes.
      expect(usage).toEqual({ bytes: Number(du), inodes: 4 });
      expect(missing).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseMemory', () => {
  const v1Stat = 'cache 10\nrss 20\ntotal_cache 4096\ntotal_rss 8192\ntotal_inactive_file 1000\ntotal_pgfault 7\ntotal_pgmajfault 2\n';
  it('takes the v1 totals and the working set (usage less inactive file)', () => {
    expect(parseMemory(v1Stat, '5000\n', '9223372036854771712\n', false)).toEqual({
      workingSetBytes: 4000n, usageBytes: 5000n, rssBytes: 8192n, pageFaults: 7n, majorPageFaults: 2n,
    });
  });
  it('takes the v2 keys, with available bytes under a limit and none under "max"', () => {
    const v2Stat = 'anon 300\nfile 50\ninactive_file 40\npgfault 9\npgmajfault 1';
    expect(parseMemory(v2Stat, '1000', '4000', true)).toEqual({
      workingSetBytes: 960n, usageBytes: 1000n, rssBytes: 300n, pageFaults: 9n, majorPageFaults: 1n, availableBytes: 3040n,
    });
    expect(parseMemory(v2Stat, '1000', 'max\n', true).availableBytes).toBeUndefined();
  });
  it('reads nothing as zero', () => {
    expect(parseMemory(null, null, null, true)).toEqual({ workingSetBytes: 0n, usageBytes: 0n, rssBytes: 0n, pageFaults: 0n, majorPageFaults: 0n });
  });
  it('takes swap apart on v2, and as memory+swap less memory on v1; none where swap is not accounted', () => {
    expect(parseMemory(null, '1000', '4000', true, '300\n', '1000\n')).toMatchObject({ swapUsageBytes: 300n, swapAvailableBytes: 700n });
    expect(parseMemory(null, '1000', '4000', true, '300\n', 'max\n')).toMatchObject({ swapUsageBytes: 300n });
    expect(parseMemory(null, '1000', '4000', true, '300\n', 'max\n').swapAvailableBytes).toBeUndefined();
    expect(parseMemory(null, '5000\n', '8000\n', false, '5600\n', '10000\n')).toMatchObject({ swapUsageBytes: 600n, swapAvailableBytes: 4400n });
    expect(parseMemory(null, '5000\n', '8000\n', false, null, null).swapUsageBytes).toBeUndefined();
  });
});
