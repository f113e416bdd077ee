// What the suite makes once and removes at the end, even after a failure or Ctrl-C: a temp dir, a
// loopback registry with the busybox test image, a CNI bridge network of its own (host-local IPAM data
// under the temp dir), and berthd's dir. `scrub` is the last resort after berthd's own removal: it
// stops by PID what berthd left running for our ids, unmounts what is left under our dir, removes our
// cgroups and veths, the bridge, the registry and the dir.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxImage } from '../images/busybox';
import { bridgeNetwork, type BridgeNetwork } from '../../test/support/bridge-network';
import { pushImage } from '../../test/support/oci/push';
import { startRegistry, type TestRegistry } from '../../test/support/registry';
import { cgroupLayout } from '../../src/cgroups/layout';
import { cgroupProcesses, helperProcesses, mountPoints, ourCgroups } from './leaks';

export interface CrashEnv {
  dir: string;
  daemonDir: string;
  logDir: string;
  registry?: TestRegistry;
  network?: BridgeNetwork;
  netName: string;
  ipamDir: string;
  image: string;
}

export async function setUp(): Promise<CrashEnv> {
  const tag = `${process.pid % 10000}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-crash-'));
  const netName = `crash${tag}`;
  const env: CrashEnv = { dir, daemonDir: path.join(dir, 'berthd'), logDir: path.join(dir, 'logs'), netName, ipamDir: path.join(dir, 'ipam', netName), image: '' };
  try {
    env.network = bridgeNetwork(dir, { name: netName, bridge: `bcrash${tag}`, subnet: `10.133.${process.pid % 250}`, portmap: false });
    env.registry = await startRegistry();
    await pushImage({ host: env.registry.host, repository: 'busybox' }, busyboxImage(), ['latest']);
    env.image = `${env.registry.host}/busybox:latest`;
    return env;
  } catch (err) {
    await scrub(env, new Set(), () => undefined);
    throw err;
  }
}

const tryRun = (cmd: string, args: string[]) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Removes everything of the run; `say` reports what had to be forced. */
export async function scrub(env: CrashEnv, ids: ReadonlySet<string>, say: (line: string) => void): Promise<void> {
  const state = path.join(env.daemonDir, 'state');
  for (const p of helperProcesses(state)) {
    say(`scrub: killing ${p.comm} ${p.pid}`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const p of cgroupProcesses(ids)) {
    say(`scrub: killing ${p.comm} ${p.pid} in ${p.cgroup}`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  // Deepest first; lazily, as nothing of ours may still use them.
  for (const mp of mountPoints(env.dir).sort((a, b) => b.length - a.length)) {
    say(`scrub: unmounting ${mp}`);
    tryRun('umount', ['-l', mp]);
  }
  for (let i = 0; i < 10; i++) {
    const left = [...ourCgroups(ids)].sort((a, b) => b[0].length - a[0].length);
    if (!left.length) break;
    for (const [rel, hs] of left) {
      for (const h of hs) {
        try {
          fs.rmdirSync(path.join(h, rel));
        } catch {
          // busy (processes still exiting) or gone
        }
      }
    }
    if (i === 0) say(`scrub: removing ${left.length} cgroups (${cgroupLayout().all.length} hierarchies)`);
    await new Promise((r) => setTimeout(r, 200));
  }
  if (env.network) {
    try {
      const veths = execFileSync('ip', ['-o', 'link', 'show', 'master', env.network.bridge], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')[1].trim().split('@')[0]);
      for (const v of veths) {
        say(`scrub: deleting veth ${v}`);
        tryRun('ip', ['link', 'del', v]);
      }
    } catch {
      // no bridge
    }
    env.network.remove();
  }
  await env.registry?.stop().catch(() => undefined);
  fs.rmSync(env.dir, { recursive: true, force: true });
}
