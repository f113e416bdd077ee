// UpdateRuntimeConfig (the kubelet's pod CIDR): given to CNI plugins that declare the ipRanges
// capability, so host-local allocates the node's pod addresses from it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { startBerthd, type BerthdHandle } from '../support/berthd';

const tag = `${process.pid % 10000}`;
const octet = process.pid % 250;
const bridge = `bcid${tag}`;

describe('UpdateRuntimeConfig', () => {
  let dir: string;
  let berthd: BerthdHandle;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-podcidr-'));
    const confDir = path.join(dir, 'cni');
    fs.mkdirSync(confDir);
    // No ranges of its own: host-local adds each ipRanges set to them (a second address, a second gateway).
    const ipam = { type: 'host-local', dataDir: path.join(dir, 'ipam') };
    const plugins = [{ type: 'bridge', bridge, isGateway: true, ipam, capabilities: { ipRanges: true } }];
    fs.writeFileSync(path.join(confDir, '10-cidr.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: `cidr-${tag}`, plugins }));
    berthd = await startBerthd({ args: ['--cni-conf-dir', confDir] });
  });

  afterAll(async () => {
    for (const p of (await berthd.client.runtime.ListPodSandbox({})).items) await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: p.id });
    await berthd.cleanup();
    try {
      execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
    } catch {
      // never made
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const podIp = async (name: string) => {
    const rt = berthd.client.runtime;
    const config: PodSandboxConfig = { metadata: { name, namespace: 'default', uid: `u-${name}-${tag}`, attempt: 0 }, hostname: name };
    const id = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    return (await rt.PodSandboxStatus({ pod_sandbox_id: id })).status?.network?.ip ?? '';
  };

  // As the kubelet does: the pod CIDR first, before any pod. The network names no range itself, so the
  // addresses can only come from the CIDR.
  it('gives pods addresses from the pod CIDR it was told, where the network takes ipRanges', async () => {
    await berthd.client.runtime.UpdateRuntimeConfig({ runtime_config: { network_config: { pod_cidr: `10.132.${octet}.0/24` } } });
    expect(await podIp('first')).toMatch(new RegExp(`^10\\.132\\.${octet}\\.\\d+$`));
    expect(await podIp('second')).toMatch(new RegExp(`^10\\.132\\.${octet}\\.\\d+$`));
  });
});
