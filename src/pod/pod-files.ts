// The per-pod files containers mount: /etc/hostname, /etc/hosts and /etc/resolv.conf.
import { InvalidArgumentError } from '../errors';

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

/** The limits the kubelet itself enforces (32 domains, 2048 characters) since glibc 2.26 lifted the old ones. */
const MAX_SEARCHES = 32;
const MAX_SEARCH_LENGTH = 2048;

export function hostnameFile(hostname: string): string {
  return `${hostname}\n`;
}

export function validateHostname(hostname: string): void {
  if (hostname.length > 64) throw new InvalidArgumentError(`hostname ${JSON.stringify(hostname)} is longer than 64 characters`);
  if (!/^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/.test(hostname)) {
    throw new InvalidArgumentError(`hostname ${JSON.stringify(hostname)} is not a valid host name`);
  }
}

/** /etc/hosts as the kubelet writes it for pods: loopback, IPv6 names, and the pod's own address. */
export function hostsFile(hostname: string, podIps: readonly string[]): string {
  const lines = [
    '# Kubernetes-managed hosts file (written by berth).',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  for (const ip of podIps) lines.push(`${ip}\t${hostname}`);
  return lines.join('\n') + '\n';
}

export function resolvConf(dns: DnsConfig, hostResolvConf: string): string {
  const empty = !dns.servers.length && !dns.searches.length && !dns.options.length;
  if (empty) return hostResolvConf;
  if (dns.searches.length > MAX_SEARCHES || dns.searches.join(' ').length > MAX_SEARCH_LENGTH) {
    throw new InvalidArgumentError(`DNS search list too long: ${dns.searches.length} domains`);
  }
  for (const value of [...dns.servers, ...dns.searches, ...dns.options]) {
    if (/[\s#;]/.test(value) || value === '') {
      throw new InvalidArgumentError(`DNS config value ${JSON.stringify(value)} is not allowed in resolv.conf`);
    }
  }
  const lines: string[] = [];
  if (dns.searches.length) lines.push(`search ${dns.searches.join(' ')}`);
  for (const server of dns.servers) lines.push(`nameserver ${server}`);
  if (dns.options.length) lines.push(`options ${dns.options.join(' ')}`);
  return lines.join('\n') + '\n';
}
