// The addon against the real kernel (as root): mounts, statfs, mknod, xattrs, and errors.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  isNativeError,
  lgetxattr,
  llistxattr,
  lsetxattr,
  makeCgroup,
  makedev,
  mknod,
  mount,
  MNT_DETACH,
  pipe,
  posixSpawnAsync,
  writeFileSynced,
  MS_BIND,
  MS_RDONLY,
  MS_REMOUNT,
  S_IFCHR,
  S_IFIFO,
  statfs,
  TMPFS_MAGIC,
  umount2,
} from '../../src/native';
import { cgroupRoots } from '../../src/cgroups/layout';
import { waitForExit } from '../../src/util/spawn';
import { packageRoot } from '../../src/util/package-root';

describe('native addon', () => {
  let dir: string;
  let mounted: string[];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-native-'));
    mounted = [];
    fs.mkdirSync(path.join(dir, 'mnt'));
    mount('tmpfs', path.join(dir, 'mnt'), 'tmpfs', 0, 'size=1m,mode=755');
    mounted.push(path.join(dir, 'mnt'));
  });

  afterEach(() => {
    for (const m of mounted.reverse()) {
      try {
        umount2(m, MNT_DETACH);
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('mounts a tmpfs that statfs sees with its type and size', () => {
    const st = statfs(path.join(dir, 'mnt'));
    expect(st.type).toBe(TMPFS_MAGIC);
    expect(st.blocks * st.bsize).toBe(1024 * 1024);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).toContain(path.join(dir, 'mnt'));
  });

  it('bind-mounts and remounts read-only, so writes fail with EROFS', () => {
    const bind = path.join(dir, 'bind');
    fs.mkdirSync(bind);
    mount(path.join(dir, 'mnt'), bind, null, MS_BIND);
    mounted.push(bind);
    fs.writeFileSync(path.join(bind, 'a'), 'x');
    expect(fs.readFileSync(path.join(dir, 'mnt', 'a'), 'utf8')).toBe('x');
    mount(null, bind, null, MS_BIND | MS_REMOUNT | MS_RDONLY);
    expect(() => fs.writeFileSync(path.join(bind, 'b'), 'y')).toThrow(/EROFS/);
    umount2(bind, MNT_DETACH);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(` ${bind} `);
  });

  it('throws Node-style errors with code, errno, syscall and path', () => {
    const missing = path.join(dir, 'missing');
    let caught: unknown;
    try {
      mount('tmpfs', missing, 'tmpfs', 0);
    } catch (err) {
      caught = err;
    }
    expect(isNativeError(caught, 'ENOENT')).toBe(true);
    expect(caught).toMatchObject({ code: 'ENOENT', errno: 2, syscall: 'mount', dest: missing });
    expect((caught as Error).message).toBe(`ENOENT: No such file or directory, mount 'tmpfs' -> '${missing}'`);
    expect(() => statfs(missing)).toThrow(/^ENOENT: .*statfs/);
    expect(() => umount2(path.join(dir), 0)).toThrow(/EINVAL/);
  });

  it('makes fifos and character devices (an overlay whiteout is a 0/0 char device)', () => {
    const fifo = path.join(dir, 'mnt', 'fifo');
    mknod(fifo, S_IFIFO | 0o600, 0);
    expect(fs.statSync(fifo).isFIFO()).toBe(true);
    const whiteout = path.join(dir, 'mnt', 'gone');
    mknod(whiteout, S_IFCHR | 0o000, makedev(0, 0));
    const st = fs.statSync(whiteout);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
    expect(makedev(1, 3)).toBe(fs.statSync('/dev/null').rdev);
  });

  it('sets, reads and lists trusted xattrs, and returns null for a missing one', () => {
    const file = path.join(dir, 'mnt', 'f');
    fs.writeFileSync(file, '');
    lsetxattr(file, 'trusted.berth.test', Buffer.from('value'));
    expect(lgetxattr(file, 'trusted.berth.test')?.toString()).toBe('value');
    expect(llistxattr(file)).toContain('trusted.berth.test');
    expect(lgetxattr(file, 'trusted.berth.none')).toBeNull();
    expect(() => lgetxattr(path.join(dir, 'mnt', 'nofile'), 'trusted.x')).toThrow(/ENOENT/);
  });

  it('refuses wrong argument types with a TypeError naming the function', () => {
    expect(() => (statfs as unknown as (x: number) => void)(5)).toThrow(TypeError);
    expect(() => (statfs as unknown as (x: number) => void)(5)).toThrow(/statfs: argument 1 must be a string/);
  });

  it('makes a cgroup in every hierarchy, fills v1 cpusets from the parent, moves a process in, and names what failed', async () => {
    const roots = cgroupRoots();
    const cgroup = `berth-native-test-${process.pid}/pod/leaf`;
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await makeCgroup(roots, cgroup, child.pid!);
      for (const root of roots) {
        const leaf = path.join(root, cgroup);
        expect(fs.readFileSync(path.join(leaf, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(child.pid));
        if (fs.existsSync(path.join(leaf, 'cpuset.cpus')) && !fs.existsSync(path.join(leaf, 'cgroup.subtree_control'))) {
          expect(fs.readFileSync(path.join(leaf, 'cpuset.cpus'), 'utf8').trim()).toBe(fs.readFileSync(path.join(root, 'cpuset.cpus'), 'utf8').trim());
        }
      }
      // Making it again is not an error (the kubelet's parent exists already).
      await makeCgroup(roots, cgroup, 0);
      await expect(makeCgroup([path.join(dir, 'no-such-root')], 'x', 0)).rejects.toMatchObject({ code: 'ENOENT', syscall: 'mkdir', path: path.join(dir, 'no-such-root', 'x') });
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      for (const root of roots) {
        for (const d of [cgroup, path.dirname(cgroup), path.dirname(path.dirname(cgroup))]) {
          for (let i = 0; i < 50 && fs.existsSync(path.join(root, d)); i++) {
            try {
              fs.rmdirSync(path.join(root, d));
            } catch {
              await new Promise((r) => setTimeout(r, 20)); // EBUSY until the killed process has left
            }
          }
        }
      }
    }
  });

  it('spawns on the thread pool with the fds, environment and default signal mask it was given', async () => {
    const out = path.join(dir, 'out');
    const outFd = fs.openSync(out, 'w');
    const [inRead, inWrite] = pipe();
    fs.writeSync(inWrite, 'from stdin\n');
    fs.closeSync(inWrite);
    try {
      // The thread pool's threads block every signal; the child must not inherit that mask.
      const script = 'read line; echo "$line $GREETING"; grep ^SigBlk /proc/self/status';
      const pid = await posixSpawnAsync('/bin/sh', ['sh', '-c', script], { stdinFd: inRead, stdoutFd: outFd, env: { GREETING: 'hello' } });
      expect(await waitForExit(pid)).toEqual({ code: 0, signal: null });
    } finally {
      fs.closeSync(inRead);
      fs.closeSync(outFd);
    }
    expect(fs.readFileSync(out, 'utf8')).toBe('from stdin hello\nSigBlk:\t0000000000000000\n');
    await expect(posixSpawnAsync(path.join(dir, 'no-such-binary'), ['x'])).rejects.toMatchObject({ code: 'ENOENT', syscall: 'posix_spawn' });
  });

  it('writes a file durably in one job, renames it over another, and leaves nothing behind on failure', async () => {
    const target = path.join(dir, 'record.json');
    fs.writeFileSync(target, 'old');
    const temp = path.join(dir, '.record.json.tmp');
    await writeFileSynced(temp, 'new', 0o640, target);
    expect(fs.readFileSync(target, 'utf8')).toBe('new');
    expect(fs.statSync(target).mode & 0o777).toBe(0o640);
    expect(fs.existsSync(temp)).toBe(false);
    // Without a rename the file stays where it was written; an existing name is never written through.
    await writeFileSynced(path.join(dir, 'layer.json'), Buffer.from('{}'), 0o600);
    expect(fs.readFileSync(path.join(dir, 'layer.json'), 'utf8')).toBe('{}');
    await expect(writeFileSynced(path.join(dir, 'layer.json'), 'x', 0o600)).rejects.toMatchObject({ code: 'EEXIST', syscall: 'open' });
    expect(fs.readFileSync(path.join(dir, 'layer.json'), 'utf8')).toBe('{}');
    fs.symlinkSync(target, path.join(dir, 'link'));
    await expect(writeFileSynced(path.join(dir, 'link'), 'x', 0o600)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(fs.readFileSync(target, 'utf8')).toBe('new');
    // A rename that fails removes the temp file it wrote.
    await expect(writeFileSynced(temp, 'x', 0o600, path.join(dir, 'no-such-dir', 'f'))).rejects.toMatchObject({ code: 'ENOENT', syscall: 'rename', path: temp });
    expect(fs.existsSync(temp)).toBe(false);
    // A full filesystem: ENOSPC from the write, and the partial file is gone.
    const full = path.join(dir, 'mnt', 'big');
    await expect(writeFileSynced(full, Buffer.alloc(2 * 1024 * 1024), 0o600)).rejects.toMatchObject({ code: 'ENOSPC', syscall: 'write', path: full });
    expect(fs.existsSync(full)).toBe(false);
  });

  it('the C helpers\' shared code passes its own tests', () => {
    expect(() => execFileSync('make', ['-s', '-C', path.join(packageRoot(), 'native'), 'test'], { stdio: 'pipe' })).not.toThrow();
  });
});
