// Resolving a container's user the way runc and containerd do: from the image's (or the CRI config's)
// USER — a name or a uid, with an optional group — against the container's own /etc/passwd and
// /etc/group, plus the supplementary groups that /etc/group lists the user in.
import { InvalidArgumentError } from '../errors';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

export function parsePasswd(text: string): PasswdEntry[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 7 && /^\d+$/.test(f[2]) && /^\d+$/.test(f[3]))
    .map((f) => ({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] }));
}

export function parseGroup(text: string): GroupEntry[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[2]))
    .map((f) => ({ name: f[0], gid: Number(f[2]), members: f[3] ? f[3].split(',').map((m) => m.trim()) : [] }));
}

export interface UserRequest {
  /** USER as an image has it ("nginx", "1000", "1000:50", "app:staff"), or "" */
  imageUser: string;
  runAsUser?: number;
  runAsUsername?: string;
  runAsGroup?: number;
  supplementalGroups: number[];
  /**
   * merge (the default): the groups the image's /etc/group gives the user, and supplementalGroups;
   * strict: supplementalGroups only (the image's /etc/group is not read for them).
   */
  supplementalGroupsPolicy?: 'merge' | 'strict';
}

function lookupGroup(spec: string, groups: GroupEntry[]): number {
  if (/^\d+$/.test(spec)) return Number(spec);
  const g = groups.find((x) => x.name === spec);
  if (!g) throw new InvalidArgumentError(`group ${JSON.stringify(spec)} is not in the container's /etc/group`);
  return g.gid;
}

export function resolveUser(req: UserRequest, passwd: PasswdEntry[], groups: GroupEntry[]): ResolvedUser {
  if (req.runAsGroup !== undefined && req.runAsUser === undefined && !req.runAsUsername) {
    throw new InvalidArgumentError('run_as_group is set but no user is: set run_as_user or run_as_username too');
  }
  let userSpec: string;
  let groupSpec: string | undefined;
  if (req.runAsUser !== undefined) userSpec = String(req.runAsUser);
  else if (req.runAsUsername) userSpec = req.runAsUsername;
  else [userSpec, groupSpec] = req.imageUser.split(':');
  if (!userSpec) userSpec = '0';
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (/^\d+$/.test(userSpec)) {
    uid = Number(userSpec);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userSpec);
    if (!entry) throw new InvalidArgumentError(`user ${JSON.stringify(userSpec)} is not in the container's /etc/passwd`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (groupSpec) gid = lookupGroup(groupSpec, groups);
  if (req.runAsGroup !== undefined) gid = req.runAsGroup;
  const memberOf = entry && req.supplementalGroupsPolicy !== 'strict' ? groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid) : [];
  // The primary group first, as containerd and CRI-O set (and report) the groups: `id -G` is the same.
  const additionalGids = [...new Set([gid, ...memberOf, ...req.supplementalGroups])];
  return { uid, gid, additionalGids, home: entry?.home ?? '/' };
}
