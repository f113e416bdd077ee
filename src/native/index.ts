// The typed face of berth's node-addon-api addon (native/addon/): syscalls Node lacks. Loaded lazily,
// so a process that never needs them (e.g. `berthd config`) runs without the native build.
import path from 'node:path';
import { packageRoot } from '../util/package-root';

export * from './constants';

export interface StatfsResult {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
  frsize: number;
  flags: number;
}

interface Addon {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  idmapMount(source: string, target: string, usernsPath: string): void;
  statfs(path: string): StatfsResult;
  mknod(path: string, mode: number, dev: number): void;
  makedev(major: number, minor: number): number;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  netnsConnect(nsPath: string, address: string, port: number): number;
  spawn(file: string, argv: string[], stdoutFd: number, stderrFd: number, newSession: boolean, stdinFd: number, env: string[] | null): number;
  spawnAsync(
    file: string,
    argv: string[],
    stdoutFd: number,
    stderrFd: number,
    newSession: boolean,
    stdinFd: number,
    env: string[] | null,
  ): Promise<number>;
  pipe(): [number, number];
  reap(pid: number): { code: number | null; signal: number | null } | null;
  readFiles(paths: string[], netns: (string | null)[] | null, maxBytes: number): Promise<(string | null)[]>;
  writeFileSynced(file: string, data: Buffer, mode: number, renameTo: string | null): Promise<void>;
  diskUsage(dirs: string[]): Promise<({ bytes: number; inodes: number } | null)[]>;
  makeCgroup(roots: string[], cgroup: string, pid: number): Promise<void>;
}

/** An error from a syscall, shaped like Node's own fs errors. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  dest?: string;
}

export function isNativeError(err: unknown, code?: string): err is NativeError {
  if (!(err instanceof Error) || typeof (err as NativeError).syscall !== 'string') return false;
  return code === undefined || (err as NativeError).code === code;
}

let addon: Addon | undefined;

function load(): Addon {
  if (addon) return addon;
  const file = path.join(packageRoot(), 'native', 'build', 'Release', 'berth_native.node');
  try {
    addon = require(file) as Addon;
  } catch (err) {
    throw new Error(`berth's native addon is not built (${file}): run \`npm run build:native\`: ${(err as Error).message}`);
  }
  return addon;
}

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  load().mount(source, target, fstype, flags, data);
}

export function umount2(target: string, flags = 0): void {
  load().umount2(target, flags);
}

/** Binds a read-only copy of the mount at `source` on `target`, idmapped with the user namespace pinned at `usernsPath`. */
export function idmapMount(source: string, target: string, usernsPath: string): void {
  load().idmapMount(source, target, usernsPath);
}

export function statfs(target: string): StatfsResult {
  return load().statfs(target);
}

export function mknod(target: string, mode: number, dev: number): void {
  load().mknod(target, mode, dev);
}

export function makedev(major: number, minor: number): number {
  return load().makedev(major, minor);
}

export function lsetxattr(target: string, name: string, value: Buffer, flags = 0): void {
  load().lsetxattr(target, name, value, flags);
}

/** The attribute's value, or null when the file has no such attribute. */
export function lgetxattr(target: string, name: string): Buffer | null {
  return load().lgetxattr(target, name);
}

export function llistxattr(target: string): string[] {
  return load().llistxattr(target);
}

/** A TCP connection to address:port inside the network namespace at nsPath; returns the socket's fd. */
export function netnsConnect(nsPath: string, address: string, port: number): number {
  return load().netnsConnect(nsPath, address, port);
}

export interface SpawnOptions {
  stdinFd?: number;
  stdoutFd?: number;
  stderrFd?: number;
  newSession?: boolean;
  /** The child's whole environment; berthd's own when not given. */
  env?: Record<string, string>;
}

type SpawnArgs = [string, string[], number, number, boolean, number, string[] | null];

function spawnArgs(file: string, argv: string[], opts: SpawnOptions): SpawnArgs {
  const env = opts.env ? Object.entries(opts.env).map(([k, v]) => `${k}=${v}`) : null;
  return [file, argv, opts.stdoutFd ?? -1, opts.stderrFd ?? -1, opts.newSession ?? false, opts.stdinFd ?? -1, env];
}

/** posix_spawn: the child's pid. A standard fd not given (or -1) is /dev/null. */
export function posixSpawn(file: string, argv: string[], opts: SpawnOptions = {}): number {
  return load().spawn(...spawnArgs(file, argv, opts));
}

/**
 * posixSpawn on the thread pool: berthd's thread does not wait for the child's exec. The fds given must
 * stay open until the promise settles.
 */
export function posixSpawnAsync(file: string, argv: string[], opts: SpawnOptions = {}): Promise<number> {
  return load().spawnAsync(...spawnArgs(file, argv, opts));
}

/** pipe2(O_CLOEXEC) with a 1 MiB buffer where allowed: [readFd, writeFd]. */
export function pipe(): [number, number] {
  return load().pipe();
}

/** waitpid(pid, WNOHANG): null while it runs, its end once it has exited. */
export function reapChild(pid: number): { code: number | null; signal: number | null } | null {
  return load().reap(pid);
}

/**
 * Reads many small files (cgroup, /proc) in one thread-pool job: per path its text (at most maxBytes) or
 * null when it cannot be read. netns[i], if given, is a network namespace that file i is read from inside of.
 */
export function readFiles(paths: string[], netns: (string | null)[] | null = null, maxBytes = 256 * 1024): Promise<(string | null)[]> {
  return load().readFiles(paths, netns, maxBytes);
}

/**
 * Creates `file` (O_EXCL, not through a symlink) with data and mode, and fsyncs it, in one thread-pool
 * job. With renameTo, the file is then renamed over renameTo and that directory fsynced. On failure the
 * file made is removed.
 */
export function writeFileSynced(file: string, data: string | Uint8Array, mode: number, renameTo?: string): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return load().writeFileSynced(file, bytes, mode, renameTo ?? null);
}

/** Bytes and inodes under each directory, as du counts them, walked in one thread-pool job (null: cannot be walked). */
export function diskUsage(dirs: string[]): Promise<({ bytes: number; inodes: number } | null)[]> {
  return load().diskUsage(dirs);
}

/**
 * Makes the cgroup (and its missing ancestors) under each hierarchy root, v1 cpusets filled from their parent,
 * and moves `pid` in when it is not 0: one thread-pool job for all of it.
 */
export function makeCgroup(roots: string[], cgroup: string, pid = 0): Promise<void> {
  return load().makeCgroup(roots, cgroup, pid);
}
