// A test berthd ready to run containers: its own temp dir, a loopback registry holding the busybox test
// image (already pulled), and a CNI bridge network of its own; and the teardown that removes every pod
// it made before stopping it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxImage } from '../../hack/images/busybox';
import { startBerthd, type BerthdHandle } from './berthd';
import { bridgeNetwork, type BridgeNetwork } from './bridge-network';
import { pushImage } from './oci/push';
import { startRegistry, type TestRegistry } from './registry';

export interface PodDaemon {
  dir: string;
  registry: TestRegistry;
  network: BridgeNetwork;
  /** The busybox image's name in the registry. */
  image: string;
  /** The daemon as started (a test that restarts it keeps its own handle). */
  berthd: BerthdHandle;
}

export async function startPodDaemon(
  prefix: string,
  net: { name: string; bridge: string; subnet: string; portmap?: boolean },
  env?: NodeJS.ProcessEnv,
  /** berth.toml for the daemon (else an empty one: the defaults). */
  configToml?: string,
): Promise<PodDaemon> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const registry = await startRegistry();
  await pushImage({ host: registry.host, repository: 'busybox' }, busyboxImage(), ['latest']);
  const image = `${registry.host}/busybox:latest`;
  const network = bridgeNetwork(dir, net);
  const berthd = await startBerthd({ args: ['--cni-conf-dir', network.confDir], env, configToml });
  await berthd.client.image.PullImage({ image: { image } });
  return { dir, registry, network, image, berthd };
}

/** Removes every pod of the daemon (berthd, the current handle, never stops containers itself), stops it, and removes the rest. */
export async function stopPodDaemon(env: PodDaemon | undefined, berthd: BerthdHandle | undefined = env?.berthd): Promise<void> {
  if (berthd) {
    for (const p of (await berthd.client.runtime.ListPodSandbox({})).items) await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: p.id });
    await berthd.cleanup();
  }
  if (!env) return;
  await env.registry.stop();
  env.network.remove();
  fs.rmSync(env.dir, { recursive: true, force: true });
}
