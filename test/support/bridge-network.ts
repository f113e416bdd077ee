// A CNI network of its own for a test daemon: a bridge (and portmap) config in a conf dir, with
// host-local IPAM state under the test's dir, and removal of the bridge afterwards.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface BridgeNetwork {
  /** The conf dir to pass as --cni-conf-dir. */
  confDir: string;
  bridge: string;
  /** The first three octets, e.g. "10.125.7". */
  subnet: string;
  /** Deletes the bridge (veths went with their pods). */
  remove(): void;
}

export function bridgeNetwork(dir: string, opts: { name: string; bridge: string; subnet: string; portmap?: boolean }): BridgeNetwork {
  const confDir = path.join(dir, 'cni');
  fs.mkdirSync(confDir, { recursive: true });
  const ipam = { type: 'host-local', dataDir: path.join(dir, 'ipam'), ranges: [[{ subnet: `${opts.subnet}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] };
  const plugins: object[] = [{ type: 'bridge', bridge: opts.bridge, isGateway: true, ipam }];
  if (opts.portmap !== false) plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  fs.writeFileSync(path.join(confDir, '10-test.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: opts.name, plugins }));
  return {
    confDir,
    bridge: opts.bridge,
    subnet: opts.subnet,
    remove() {
      try {
        execFileSync('ip', ['link', 'del', opts.bridge], { stdio: 'ignore' });
      } catch {
        // never made
      }
    },
  };
}
