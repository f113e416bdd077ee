// The rules for names, sizes and numbers in CRI requests (docs/cri-input.md): what a kubelet never sends is
// refused before berth acts on it, naming the field. A value out of range is INVALID_ARGUMENT; a request too
// big to run (more labels, or more command line and environment, than any kubelet sends) is
// RESOURCE_EXHAUSTED, as gRPC's code for a limit.
import { InvalidArgumentError, ResourceExhaustedError } from '../../errors';

/** Kubernetes' limit on a pod's labels plus annotations (apimachinery's TotalAnnotationSizeLimitB). */
export const MAX_METADATA_BYTES = 256 * 1024;
/** Command, args and environment together: half of this host's ARG_MAX (2 MiB), so that execve never fails on it. */
export const MAX_EXEC_BYTES = 1024 * 1024;
/** Kubernetes' longest object name (a DNS subdomain). */
const MAX_NAME_BYTES = 253;
/** The kernel's HOST_NAME_MAX. */
const MAX_HOSTNAME_BYTES = 64;
/** The largest uid or gid: 2^32 - 2 (2^32 - 1 is (uid_t)-1, "no change"). */
const MAX_ID = 2 ** 32 - 2;

const bytes = (s: string) => Buffer.byteLength(s);

/**
 * A metadata name, namespace or uid: not empty (unless allowed), at most 253 bytes, no NUL, slash or control
 * character, not "." or "..": it becomes part of file names and of the names berth derives.
 */
export function metadataName(field: string, value: string, opts: { optional?: boolean } = {}): string {
  if (!value) {
    if (opts.optional) return value;
    throw new InvalidArgumentError(`${field} is empty`);
  }
  if (bytes(value) > MAX_NAME_BYTES) throw new InvalidArgumentError(`${field} is ${bytes(value)} bytes long; at most ${MAX_NAME_BYTES} are allowed`);
  if (/[\u0000-\u001f\u007f/]/.test(value)) throw new InvalidArgumentError(`${field} ${JSON.stringify(value)} contains "/" or a control character`);
  if (value === '.' || value === '..') throw new InvalidArgumentError(`${field} must not be ${JSON.stringify(value)}`);
  return value;
}

export function hostname(value: string): string {
  if (bytes(value) > MAX_HOSTNAME_BYTES) throw new InvalidArgumentError(`hostname is ${bytes(value)} bytes long; the kernel takes at most ${MAX_HOSTNAME_BYTES}`);
  if (/[\u0000-\u001f\u007f/\s]/.test(value)) throw new InvalidArgumentError(`hostname ${JSON.stringify(value)} contains a space, "/" or a control character`);
  return value;
}

/** Labels and annotations: keys not empty, no NUL anywhere, and all of them within Kubernetes' 256 KiB. */
export function labelsAndAnnotations(what: string, labels: Record<string, string>, annotations: Record<string, string>): void {
  let total = 0;
  for (const [kind, map] of [['labels', labels], ['annotations', annotations]] as const) {
    for (const [k, v] of Object.entries(map)) {
      if (!k) throw new InvalidArgumentError(`${what} ${kind}: a key is empty`);
      if (k.includes('\0') || v.includes('\0')) throw new InvalidArgumentError(`${what} ${kind}: ${JSON.stringify(k)} contains a NUL byte`);
      total += bytes(k) + bytes(v);
    }
  }
  if (total > MAX_METADATA_BYTES) throw new ResourceExhaustedError(`${what} labels and annotations are ${total} bytes; at most ${MAX_METADATA_BYTES} are allowed`);
}

/** The bytes an argv takes in execve (each string and its NUL); a NUL inside one (execve would cut there) is refused. */
function argvBytes(field: string, argv: readonly string[]): number {
  let total = 0;
  for (const [i, s] of argv.entries()) {
    if (s.includes('\0')) throw new InvalidArgumentError(`${field}[${i}] contains a NUL byte`);
    total += bytes(s) + 1;
  }
  return total;
}

/** Command, args and environment: no NUL (execve would cut there), and within MAX_EXEC_BYTES together. */
export function execSize(command: readonly string[], args: readonly string[], env: readonly (readonly [string, string])[]): void {
  let total = argvBytes('command/args', [...command, ...args]);
  for (const [k, v] of env) {
    if (!k || k.includes('=') || k.includes('\0') || v.includes('\0')) throw new InvalidArgumentError(`envs: ${JSON.stringify(k)} is not a valid variable (empty, or with "=" or a NUL byte)`);
    total += bytes(k) + bytes(v) + 2;
  }
  if (total > MAX_EXEC_BYTES) throw new ResourceExhaustedError(`command, args and envs are ${total} bytes together; at most ${MAX_EXEC_BYTES} are allowed`);
}

/** An exec's command (Exec, ExecSync): not empty, no NUL, within MAX_EXEC_BYTES. */
export function execCommand<T extends readonly string[]>(call: string, cmd: T): T {
  if (cmd.length === 0) throw new InvalidArgumentError(`${call}: cmd is empty`);
  const total = argvBytes(`${call}: cmd`, cmd);
  if (total > MAX_EXEC_BYTES) throw new ResourceExhaustedError(`${call}: cmd is ${total} bytes; at most ${MAX_EXEC_BYTES} are allowed`);
  return cmd;
}

/** The longest sysctl value berth writes (a page, as /proc/sys takes at most). */
const MAX_SYSCTL_VALUE_BYTES = 4096;

/** A sysctl's value: one line of text (a newline would end the write early, a NUL cut it). */
export function sysctlValue(key: string, value: string): string {
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) throw new InvalidArgumentError(`sysctl ${key}: the value contains a newline or a control character`);
  if (bytes(value) > MAX_SYSCTL_VALUE_BYTES) throw new InvalidArgumentError(`sysctl ${key}: the value is ${bytes(value)} bytes; at most ${MAX_SYSCTL_VALUE_BYTES} are allowed`);
  return value;
}

/**
 * The longest list berth takes in a request (mounts, devices, port mappings, sysctls, capabilities, masked
 * and read-only paths, DNS entries): far beyond any pod, short of one that would make a pod start run long
 * (each mount is a syscall in the container's start, each port mapping a rule).
 */
export const MAX_LIST_ENTRIES = 1024;
/** NGROUPS_MAX: the kernel takes no more supplementary groups. */
const MAX_GROUPS = 65536;

/** A repeated field within MAX_LIST_ENTRIES (or `max`); over it, RESOURCE_EXHAUSTED. */
export function listSize<T>(field: string, list: readonly T[], max = MAX_LIST_ENTRIES): readonly T[] {
  if (list.length > max) throw new ResourceExhaustedError(`${field} has ${list.length} entries; at most ${max} are allowed`);
  return list;
}

export const groupList = <T>(field: string, list: readonly T[]) => listSize(field, list, MAX_GROUPS);

/** An integer field within [min, max]. */
export function inRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new InvalidArgumentError(`${field} is ${value}; it must be an integer from ${min} to ${max}`);
  return value;
}

export const userId = (field: string, value: number) => inRange(field, value, 0, MAX_ID);
