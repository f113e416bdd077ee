// CNI with Debian's real plugins against a real network namespace (made with `ip netns`).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/network/cni-config';
import { CNI_CHAINS_AT_ONCE, CniNetwork, type Attachment } from '../../src/network/cni-network';
import { CniError } from '../../src/network/cni-exec';
import { freePort } from '../support/ports';

const PLUGIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni'];
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

describe('CNI plugin chain', () => {
  const suffix = `${process.pid % 10000}`;
  const nsName = `berth-cni-${suffix}`;
  const bridge = `bcni${suffix}`;
  let dir: string;
  let network: CniNetwork;
  let att: Attachment;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cni-'));
    ip('netns', 'add', nsName);
    const conf = {
      cniVersion: '1.0.0',
      name: `test-${suffix}`,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipam: { type: 'host-local', dataDir: path.join(dir, 'ipam'), ranges: [[{ subnet: '10.123.45.0/24' }]] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    };
    network = new CniNetwork(parseNetworkConfig('test.conflist', JSON.stringify(conf)), {
      pluginDirs: PLUGIN_DIRS,
      cacheDir: path.join(dir, 'cache'),
      timeoutMs: 20_000,
    });
    att = {
      containerId: `c${suffix}`.padEnd(64, '0'),
      netns: `/run/netns/${nsName}`,
      ifname: 'eth0',
      args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'web' },
      capabilityArgs: { portMappings: [{ hostPort: await freePort(), containerPort: 80, protocol: 'tcp' }] },
    };
  });

  afterAll(() => {
    try {
      ip('netns', 'del', nsName);
    } catch {
      // already gone
    }
    try {
      ip('link', 'del', bridge);
    } catch {
      // already gone
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ADD gives the namespace an address in the subnet that the host can reach, and caches the result', async () => {
    const result = await network.add(att);
    const address = result.ips?.[0]?.address ?? '';
    expect(address).toMatch(/^10\.123\.45\.\d+\/24$/);
    expect(ip('netns', 'exec', nsName, 'ip', '-o', 'addr', 'show', 'eth0')).toContain(address);
    execFileSync('ping', ['-c', '1', '-W', '2', address.split('/')[0]]);
    const cached = await network.cached(att);
    expect(cached?.result.ips?.[0]?.address).toBe(address);
    expect(cached?.capabilityArgs.portMappings?.[0]?.containerPort).toBe(80);
  });

  it('CHECK passes for an attachment made by ADD (bridge only: Debian portmap 1.1 fails CHECK on IPv4-only pods)', async () => {
    const bridgeOnly = new CniNetwork(
      parseNetworkConfig('check.conflist', JSON.stringify({ cniVersion: '1.0.0', name: `check-${suffix}`, plugins: [network.config.plugins[0]] })),
      { pluginDirs: PLUGIN_DIRS, cacheDir: path.join(dir, 'cache'), timeoutMs: 20_000 },
    );
    const other = { ...att, containerId: `k${suffix}`.padEnd(64, '0'), ifname: 'eth1', capabilityArgs: {} };
    await bridgeOnly.add(other);
    await bridgeOnly.check(other);
    await bridgeOnly.del(other);
    await expect(bridgeOnly.check(other)).rejects.toThrow(/no cached result/);
  });

  it('DEL releases the address and the cache, and a second DEL is fine', async () => {
    await network.del(att);
    expect(await network.cached(att)).toBeUndefined();
    const allocations = fs.readdirSync(path.join(dir, 'ipam', `test-${suffix}`)).filter((f) => /^\d+\./.test(f));
    expect(allocations).toEqual([]);
    expect(ip('netns', 'exec', nsName, 'ip', '-o', 'link')).not.toContain('eth0');
    await network.del(att);
  });

  it('names a missing plugin, and a failing ADD leaves no allocation behind', async () => {
    const broken = new CniNetwork(
      parseNetworkConfig(
        'broken.conflist',
        JSON.stringify({
          cniVersion: '1.0.0',
          name: `broken-${suffix}`,
          plugins: [
            { type: 'bridge', bridge, ipam: { type: 'host-local', dataDir: path.join(dir, 'ipam'), ranges: [[{ subnet: '10.123.46.0/24' }]] } },
            { type: 'no-such-plugin' },
          ],
        }),
      ),
      { pluginDirs: PLUGIN_DIRS, cacheDir: path.join(dir, 'cache'), timeoutMs: 20_000 },
    );
    await expect(broken.add(att)).rejects.toThrow(CniError);
    await expect(broken.add(att)).rejects.toThrow(/CNI plugin "no-such-plugin" not found/);
    const ipamDir = path.join(dir, 'ipam', `broken-${suffix}`);
    const left = fs.existsSync(ipamDir) ? fs.readdirSync(ipamDir).filter((f) => /^\d+\./.test(f)) : [];
    expect(left).toEqual([]);
  });

  it('runs at most CNI_CHAINS_AT_ONCE plugin chains at a time, and runs that many when more are asked for', async () => {
    // A plugin that logs its start and end: how many ran at once is read from the log's order.
    const pluginDir = path.join(dir, 'slow-plugin');
    const log = path.join(dir, 'slow-plugin.log');
    fs.mkdirSync(pluginDir);
    fs.writeFileSync(path.join(pluginDir, 'slowplug'), `#!/bin/sh\necho + >> ${log}\nsleep 0.2\necho - >> ${log}\n`, { mode: 0o755 });
    const slow = new CniNetwork(
      parseNetworkConfig('slow.conflist', JSON.stringify({ cniVersion: '1.0.0', name: `slow-${suffix}`, plugins: [{ type: 'slowplug' }] })),
      { pluginDirs: [pluginDir], cacheDir: path.join(dir, 'cache'), timeoutMs: 20_000 },
    );
    const pods = Array.from({ length: 3 * CNI_CHAINS_AT_ONCE }, (_, i) => ({ ...att, containerId: `s${i}`.padEnd(64, '0') }));
    await Promise.all(pods.map((pod) => slow.del(pod)));
    let running = 0;
    let most = 0;
    const marks = fs.readFileSync(log, 'utf8').trim().split('\n');
    for (const mark of marks) {
      running += mark === '+' ? 1 : -1;
      most = Math.max(most, running);
    }
    expect(marks).toHaveLength(2 * pods.length);
    expect(most).toBe(CNI_CHAINS_AT_ONCE);
  });
});
