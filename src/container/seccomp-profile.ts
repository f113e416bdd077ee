// A Localhost seccomp profile (the kubelet's file, in the Docker/OCI JSON form) checked before it reaches
// the runtime: a profile the runtime would refuse, or silently read as something else, is refused here
// with INVALID_ARGUMENT naming the file and the field, never a container confined by less than was asked.
import { InvalidArgumentError } from '../errors';

const ACTIONS: ReadonlySet<unknown> = new Set([
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

export function parseSeccompProfile(text: string, file: string): Record<string, unknown> {
  const bad = (what: string) => new InvalidArgumentError(`seccomp profile ${JSON.stringify(file)}: ${what}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw bad('not a JSON object');
  if (!ACTIONS.has(doc.defaultAction)) throw bad(`defaultAction ${JSON.stringify(doc.defaultAction)} is not a seccomp action (SCMP_ACT_...)`);
  if (doc.architectures !== undefined && !(isStrings(doc.architectures) && doc.architectures.every((a) => a.startsWith('SCMP_ARCH_')))) {
    throw bad('architectures is not a list of SCMP_ARCH_... names');
  }
  if (doc.syscalls !== undefined) {
    if (!Array.isArray(doc.syscalls)) throw bad('syscalls is not a list');
    doc.syscalls.forEach((rule: unknown, i) => {
      if (!isObject(rule)) throw bad(`syscalls[${i}] is not an object`);
      const names = rule.names ?? (typeof rule.name === 'string' ? [rule.name] : undefined);
      if (!isStrings(names) || names.length === 0) throw bad(`syscalls[${i}] names no syscall`);
      if (!ACTIONS.has(rule.action)) throw bad(`syscalls[${i}].action ${JSON.stringify(rule.action)} is not a seccomp action`);
    });
  }
  return doc;
}
