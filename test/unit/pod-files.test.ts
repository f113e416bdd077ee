import { describe, expect, it } from 'vitest';
import { hostsFile, resolvConf, validateHostname } from '../../src/pod/pod-files';
import { InvalidArgumentError } from '../../src/errors';

describe('pod files', () => {
  it('writes resolv.conf from the DNS config, and the host file when the config is empty', () => {
    expect(
      resolvConf({ servers: ['10.96.0.10'], searches: ['default.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] }, ''),
    ).toBe('search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
    expect(resolvConf({ servers: [], searches: [], options: [] }, 'nameserver 1.1.1.1\n')).toBe('nameserver 1.1.1.1\n');
  });

  it('refuses values that would inject lines into resolv.conf', () => {
    expect(() => resolvConf({ servers: ['1.1.1.1\nnameserver 6.6.6.6'], searches: [], options: [] }, '')).toThrow(
      InvalidArgumentError,
    );
  });

  it('writes hosts with the pod address under its hostname', () => {
    const hosts = hostsFile('web-0', ['10.85.0.7']);
    expect(hosts).toMatch(/^127\.0\.0\.1\tlocalhost$/m);
    expect(hosts).toMatch(/^10\.85\.0\.7\tweb-0$/m);
  });

  it('validates hostnames', () => {
    expect(() => validateHostname('web-0.example')).not.toThrow();
    expect(() => validateHostname('bad_name')).toThrow(/not a valid host name/);
    expect(() => validateHostname('a'.repeat(65))).toThrow(/longer than 64/);
  });
});
