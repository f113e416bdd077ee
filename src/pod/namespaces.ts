// A pod's pinned namespaces: made by the berth-pinns helper (native/pinns), removed here.
import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../errors';
import type { IdMapping, UserNamespaceSpec } from './sandbox';
import { isNativeError, MNT_DETACH, umount2 } from '../native';
import { helperBinary } from '../util/helpers';
import { describeEnd, runCommand } from '../util/spawn';

export type PinnedKind = 'user' | 'net' | 'ipc' | 'uts';

export interface PinRequest {
  /** Directory holding `user/`, `net/`, `ipc/`, `uts/` pins (under the state dir). */
  dir: string;
  id: string;
  /** 'user' is made from `userns`, and owns the others. */
  kinds: readonly Exclude<PinnedKind, 'user'>[];
  userns?: UserNamespaceSpec;
  hostname?: string;
  sysctls?: Record<string, string>;
}

export const PINNS_BINARY = helperBinary('pinns');

export function pinPath(dir: string, kind: PinnedKind, id: string): string {
  return path.join(dir, kind, id);
}

/** Creates and pins the namespaces; the helper undoes its own work when it fails. */
export async function pinNamespaces(req: PinRequest): Promise<Record<PinnedKind, string | undefined>> {
  const mapArg = (m: IdMapping) => `${m.containerId}:${m.hostId}:${m.length}`;
  const args = ['--dir', req.dir, '--id', req.id, ...req.kinds.map((k) => `--${k}`)];
  if (req.userns) args.push('--user', '--uid-map', mapArg(req.userns.uids), '--gid-map', mapArg(req.userns.gids));
  if (req.hostname) args.push('--hostname', req.hostname);
  for (const [key, value] of Object.entries(req.sysctls ?? {})) args.push('--sysctl', `${key}=${value}`);
  await fs.mkdir(req.dir, { recursive: true, mode: 0o711 });
  const end = await runCommand([PINNS_BINARY, ...args], { timeoutMs: 30_000 });
  if (end.code !== 0) throw new InvalidArgumentError(end.stderr.trim() || `berth-pinns failed: ${describeEnd(end)}`);
  const out: Record<PinnedKind, string | undefined> = { user: undefined, net: undefined, ipc: undefined, uts: undefined };
  for (const k of req.kinds) out[k] = pinPath(req.dir, k, req.id);
  if (req.userns) out.user = pinPath(req.dir, 'user', req.id);
  return out;
}

/** Unmounts and removes a pin; one already gone is fine. */
export async function unpin(file: string): Promise<void> {
  try {
    umount2(file, MNT_DETACH);
  } catch (err) {
    if (!isNativeError(err, 'EINVAL') && !isNativeError(err, 'ENOENT')) throw err;
  }
  await fs.rm(file, { force: true });
}
