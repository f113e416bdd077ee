// Reading a container's files from the host never follows a symlink out of its rootfs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileInRoot, resolveInRoot } from '../../src/container/rootfs-files';

describe('readFileInRoot', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-rootfs-'));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.mkdirSync(path.join(root, 'data'));
  fs.writeFileSync(path.join(root, 'data', 'passwd'), 'inside\n');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('follows relative and absolute symlinks inside the root', async () => {
    fs.symlinkSync('../data/passwd', path.join(root, 'etc', 'passwd'));
    fs.symlinkSync('/data/passwd', path.join(root, 'etc', 'group'));
    expect(await readFileInRoot(root, '/etc/passwd')).toBe('inside\n');
    expect(await readFileInRoot(root, '/etc/group')).toBe('inside\n');
  });

  it('keeps escaping symlinks and .. inside the root', async () => {
    fs.symlinkSync('/etc/hostname', path.join(root, 'etc', 'escape'));
    fs.symlinkSync('../../../../etc', path.join(root, 'up'));
    expect(await resolveInRoot(root, '/etc/escape')).toBe(path.join(root, 'etc', 'hostname'));
    expect(await resolveInRoot(root, '/up/shadow')).toBe(path.join(root, 'etc', 'shadow'));
    expect(await readFileInRoot(root, '/etc/escape')).toBe('');
  });

  it('gives up on symlink loops', async () => {
    fs.symlinkSync('loop2', path.join(root, 'loop1'));
    fs.symlinkSync('loop1', path.join(root, 'loop2'));
    await expect(resolveInRoot(root, '/loop1')).rejects.toThrow(/too many symlinks/);
  });
});
