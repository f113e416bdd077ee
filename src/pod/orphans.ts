// The start-up sweep of pod leftovers no record accounts for: whatever carries a pod's name under this
// daemon's state dir (pod state dirs, namespace pins, mounts), a live berth-init whose pid file is in one,
// a cached CNI result, and the berth-owned cgroup of such a pod. Each is counted by kind and torn down
// with the same steps as a removed pod.
//
// The cgroup hierarchy is the host's, not this daemon's: a `/berth/<id>` without any other trace here
// may belong to another berthd on the same host (the test suites run several), so berth's own pod
// cgroups are swept only for ids this daemon's state names. With records written before the first side
// effect, a cgroup can only be left without a record by an older berthd.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CgroupDriver } from '../cgroups/driver';
import { cgroupRoots } from '../cgroups/layout';
import { messageOf } from '../errors';
import type { NetworkManager } from '../network/network-manager';
import type { Repairs } from '../state/repairs';
import type { ProcessIdentity } from '../util/process';
import { NS_KINDS, type PodTeardown } from './teardown';

const ID = /^[a-f0-9]{64}$/;

export interface SweepInput {
  state: string;
  /** Ids with a record (left alone). */
  known: ReadonlySet<string>;
  inits: Map<string, ProcessIdentity[]>;
  network: NetworkManager;
  cgroups: CgroupDriver;
  teardown: PodTeardown;
  repairs: Repairs;
  log: Logger;
}

const ids = async (dir: string): Promise<string[]> => (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => ID.test(n));

/** Mount points below `dir` in this mount namespace (mountinfo's field 5, octal escapes decoded). */
async function mountsBelow(dir: string): Promise<string[]> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const point = line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (point?.startsWith(dir + '/')) out.push(point);
  }
  return out;
}

export async function sweepOrphans(input: SweepInput): Promise<void> {
  const { state, known } = input;
  const found = new Map<string, Set<string>>();
  const note = (id: string, kind: string) => {
    if (known.has(id)) return;
    if (!found.has(id)) found.set(id, new Set());
    found.get(id)!.add(kind);
  };
  for (const id of await ids(path.join(state, 'pods'))) note(id, 'pod-orphan-statedir');
  for (const kind of NS_KINDS) for (const id of await ids(path.join(state, 'ns', kind))) note(id, `${kind}ns-orphan`);
  for (const point of await mountsBelow(state)) {
    const m = /^(?:pods|ns\/(?:net|uts|ipc|pid))\/([a-f0-9]{64})(?:\/|$)/.exec(path.relative(state, point));
    if (m) note(m[1], 'mount-orphan');
  }
  for (const id of input.inits.keys()) note(id, 'pod-init-orphan');
  for (const id of await input.network.cachedPodIds()) note(id, 'cni-orphan');
  for (const id of found.keys()) {
    const cgroup = input.cgroups.pod(id, '').path;
    for (const root of cgroupRoots()) {
      if (await fs.access(path.join(root, cgroup)).then(() => true, () => false)) {
        note(id, 'cgroup-orphan');
        break;
      }
    }
  }
  for (const [id, kinds] of found) {
    for (const kind of kinds) input.repairs.record(kind, { pod: id }, `removing a leftover of pod ${id} that has no record`);
    await input.teardown.run(id, undefined, { inits: input.inits.get(id) }).catch((err) => input.log.error({ pod: id, error: messageOf(err) }, 'removing the leftovers of a pod without a record failed'));
  }
}
