// Which endpoints serve a registry, in order: its configured mirrors, then the registry itself.
// Loopback registries and those configured insecure are reached over plain HTTP, as Docker does.
import fs from 'node:fs';
import net from 'node:net';
import type { BerthConfig } from '../../config/schema';
import { FailedPreconditionError } from '../../errors';

export interface Endpoint {
  /** scheme://host[:port] */
  url: string;
  /** Skip TLS verification (insecure registries over https). */
  insecureTls: boolean;
  ca?: Buffer;
  /** The file `ca` was read from, for a client of berthd's own (berth-unpack). */
  caFile?: string;
  mirror: boolean;
}

type RegistriesConfig = BerthConfig['image']['registries'];

const UPSTREAM_HOST: Record<string, string> = { 'docker.io': 'registry-1.docker.io' };

export function isLoopbackHost(hostPort: string): boolean {
  let host = hostPort;
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(hostPort);
  if (bracket) host = bracket[1];
  else if (host.includes(':') && !net.isIPv6(host)) host = host.slice(0, host.lastIndexOf(':'));
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

function endpoint(text: string, insecure: boolean, caFile: string | undefined, mirror: boolean): Endpoint {
  const hasScheme = /^https?:\/\//.test(text);
  const plain = !hasScheme && (insecure || isLoopbackHost(text));
  const url = (hasScheme ? text : `${plain ? 'http' : 'https'}://${text}`).replace(/\/+$/, '');
  return { url, insecureTls: insecure, ...(caFile ? { ca: fs.readFileSync(caFile), caFile } : {}), mirror };
}

/**
 * The endpoints of a registry: its mirrors, then itself unless it is mirror_only. A blocked registry has
 * none: its every pull is refused.
 */
export function endpointsFor(registry: string, registries: RegistriesConfig): Endpoint[] {
  const conf = registries[registry];
  if (conf?.blocked) throw new FailedPreconditionError(`registry ${registry} is blocked by berth's configuration (image.registries."${registry}".blocked): no image of it is pulled, through mirrors either`);
  const insecure = conf?.insecure ?? false;
  const mirrors = (conf?.mirrors ?? []).map((m) => {
    const mirrorHost = m.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    const mirrorConf = registries[mirrorHost];
    return endpoint(m, mirrorConf?.insecure ?? false, mirrorConf?.ca_file, true);
  });
  // mirror_only: the registry's own host is never contacted (configuration checks it has mirrors).
  if (conf?.mirror_only) return mirrors;
  return [...mirrors, endpoint(UPSTREAM_HOST[registry] ?? registry, insecure, conf?.ca_file, false)];
}
