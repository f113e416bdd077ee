// The rules for paths in CRI requests (docs/cri-input.md): a path the kubelet sends is either absolute and
// clean (a pod's log directory, a mount's two ends, a cgroup parent) or relative and clean (a container's log
// path below its pod's log directory). "Clean" means no "." or ".." segment and no empty one inside, so that
// no later join can climb out of where the path is meant to be. A path that breaks them is the client's
// mistake: INVALID_ARGUMENT, naming the field.
import { InvalidArgumentError } from '../errors';

/**
 * The first segment that makes a path climb or wander: ".", "..", or an empty one (between slashes; at the
 * end too unless a trailing slash is allowed).
 */
function badSegment(p: string, trailingSlash: boolean): string | undefined {
  const segments = p.split('/');
  return segments.find((s, i) => s === '.' || s === '..' || (s === '' && !(trailingSlash && i > 0 && i === segments.length - 1)));
}

/** The kernel's PATH_MAX: a longer path fails every syscall that takes it (ENAMETOOLONG). */
const PATH_MAX = 4096;

function noNul(field: string, value: string): void {
  if (value.includes('\0')) throw new InvalidArgumentError(`${field} ${JSON.stringify(value)} contains a NUL byte`);
  if (Buffer.byteLength(value) >= PATH_MAX) throw new InvalidArgumentError(`${field} is ${Buffer.byteLength(value)} bytes long; a path has fewer than ${PATH_MAX}`);
}

/** An absolute path without ".", ".." or empty segments (a trailing slash is allowed). */
export function absoluteCleanPath(field: string, value: string): string {
  noNul(field, value);
  if (!value.startsWith('/')) throw new InvalidArgumentError(`${field} ${JSON.stringify(value)} must be an absolute path`);
  const bad = value === '/' ? undefined : badSegment(value.slice(1), true);
  if (bad !== undefined) throw new InvalidArgumentError(`${field} ${JSON.stringify(value)} must be a clean path (it has a ${JSON.stringify(bad || '//')} segment)`);
  return value;
}

/** A relative path without ".", ".." or empty segments, which a join keeps below its base. */
export function relativeCleanPath(field: string, value: string): string {
  noNul(field, value);
  if (value.startsWith('/')) throw new InvalidArgumentError(`${field} ${JSON.stringify(value)} must be relative (to the pod's log directory)`);
  const bad = badSegment(value, false);
  if (bad !== undefined) throw new InvalidArgumentError(`${field} ${JSON.stringify(value)} must be a clean relative path (it has a ${JSON.stringify(bad || '//')} segment)`);
  return value;
}

/**
 * The files under /proc a container may get a mount on (what runc allows, for lxcfs-style views); any other
 * mount on /proc or below it, or on /sys itself, would hide or fake the kernel's own filesystems.
 */
const PROC_MOUNTS_ALLOWED = new Set([
  '/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg',
  '/proc/slabinfo', '/proc/net/dev', '/proc/sys/kernel/ns_last_pid',
]);

/** A mount's destination: absolute, clean, and not over /proc (but for runc's list) or /sys. */
export function mountDestination(field: string, value: string): string {
  const clean = absoluteCleanPath(field, value).replace(/(.)\/$/, '$1');
  if ((clean === '/proc' || clean.startsWith('/proc/')) && !PROC_MOUNTS_ALLOWED.has(clean)) {
    throw new InvalidArgumentError(`${field} ${JSON.stringify(value)}: a mount over /proc is refused (only ${[...PROC_MOUNTS_ALLOWED].join(', ')} may be)`);
  }
  if (clean === '/sys') throw new InvalidArgumentError(`${field} ${JSON.stringify(value)}: a mount over /sys is refused`);
  return value;
}
