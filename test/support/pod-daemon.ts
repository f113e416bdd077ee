// A test berthd ready to run containers: its own temp dir, a loopback registry holding the busybox test
// image (already pulled), and a CNI bridge network of its own; and the teardown that removes every pod
// it made before stopping it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxImage } from '../../hack/images/busybox';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { startBerthd, type BerthdHandle } from './berthd';
import { bridgeNetwork, type BridgeNetwork } from './bridge-network';
import { pushImage } from './oci/push';
import { startRegistry, type TestRegistry } from './registry';
import { until } from './until';

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

/** A pod of the daemon with its log directory under the daemon's dir; `tag` keeps uids apart between runs. */
export function podConfigOf(env: PodDaemon, name: string, tag: string): PodSandboxConfig {
  return { metadata: { name, namespace: 'default', uid: `u-${name}-${tag}`, attempt: 0 }, hostname: name, log_directory: path.join(env.dir, 'logs') };
}

/** A busybox container running `sh -c script`, logging to `<name>.log`. */
export function scriptContainer(env: PodDaemon, name: string, script: string, extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return { metadata: { name, attempt: 0 }, image: { image: env.image }, command: ['sh', '-c', script], log_path: `${name}.log`, ...extra };
}

/**
 * The text of each line a container wrote to `<dir>/logs/<name>.log` (the CRI's "<time> <stream> <tag> "
 * prefix taken off, runs of blanks made one), once a line says `last`.
 */
export async function logLines(env: PodDaemon, name: string, last = 'done', ms = 15_000): Promise<string[]> {
  const file = path.join(env.dir, 'logs', `${name}.log`);
  const read = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n').map((l) => l.split(' ').slice(3).join(' ').trim().replace(/\s+/g, ' ')).filter(Boolean);
  return until(`${name}'s log to say ${last}`, () => { const lines = read(); return lines.includes(last) && lines; }, ms);
}
