// The parts of image trust that need no registry: policy parsing, scopes, signed identities, payloads,
// registries.d, and the registry settings mirror_only and blocked.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load';
import { ConfigError } from '../../src/config/schema-kit';
import { parseReference } from '../../src/image/reference';
import { endpointsFor } from '../../src/image/registry/hosts';
import { identityAdmits, type SignedIdentity } from '../../src/image/trust/identity';
import { parsePayload } from '../../src/image/trust/payload';
import { parsePolicy } from '../../src/image/trust/policy';
import { loadRegistriesD, signatureSources } from '../../src/image/trust/registries-d';
import { scopesOf } from '../../src/image/trust/scopes';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-trust-unit-'));
  dirs.push(d);
  return d;
}

describe('trust policy scopes', () => {
  it('goes from the exact reference through the repository and its namespaces to the host and its domains', () => {
    expect(scopesOf(parseReference('registry.example.com:5000/team/app/web:1.0'))).toEqual([
      'registry.example.com:5000/team/app/web:1.0',
      'registry.example.com:5000/team/app/web',
      'registry.example.com:5000/team/app',
      'registry.example.com:5000/team',
      'registry.example.com:5000',
      '*.example.com',
      '*.com',
    ]);
    expect(scopesOf(parseReference('busybox'))).toEqual(['docker.io/library/busybox:latest', 'docker.io/library/busybox', 'docker.io/library', 'docker.io', '*.io']);
  });
});

describe('signed identities', () => {
  const admits = (identity: SignedIdentity, image: string, signed: string) => identityAdmits(identity, parseReference(image), signed);
  const def: SignedIdentity = { type: 'matchRepoDigestOrExact' };
  const digest = `sha256:${'a'.repeat(64)}`;

  it('matchRepoDigestOrExact: the exact tag for a tag, any of the repository for a digest, never a bare name', () => {
    expect(admits(def, 'r.io/a:1', 'r.io/a:1')).toBe(true);
    expect(admits(def, 'r.io/a:1', 'r.io/a:2')).toBe(false);
    expect(admits(def, `r.io/a@${digest}`, 'r.io/a:2')).toBe(true);
    expect(admits(def, `r.io/a@${digest}`, 'r.io/b:2')).toBe(false);
    expect(admits(def, 'r.io/a:latest', 'r.io/a')).toBe(false);
    // Normalised as Docker does: busybox is docker.io/library/busybox:latest.
    expect(admits(def, 'busybox', 'docker.io/library/busybox:latest')).toBe(true);
  });

  it('matchExact, matchRepository, exactReference, exactRepository, remapIdentity', () => {
    expect(admits({ type: 'matchExact' }, `r.io/a@${digest}`, 'r.io/a:1')).toBe(false);
    expect(admits({ type: 'matchRepository' }, 'r.io/a:1', 'r.io/a:9')).toBe(true);
    expect(admits({ type: 'exactReference', dockerReference: 'r.io/b:1' }, 'r.io/a:1', 'r.io/b:1')).toBe(true);
    expect(admits({ type: 'exactRepository', dockerRepository: 'r.io/b' }, 'r.io/a:1', 'r.io/b:7')).toBe(true);
    const remap: SignedIdentity = { type: 'remapIdentity', prefix: 'mirror.io/lib', signedPrefix: 'r.io/lib' };
    expect(admits(remap, 'mirror.io/lib/a:1', 'r.io/lib/a:1')).toBe(true);
    expect(admits(remap, 'mirror.io/lib/a:1', 'mirror.io/lib/a:1')).toBe(false);
    expect(admits(remap, 'mirror.io/library/a:1', 'mirror.io/library/a:1')).toBe(true);
  });
});

describe('signature payloads', () => {
  const payload = (critical: unknown, optional: unknown = {}) => Buffer.from(JSON.stringify({ critical, optional }));
  const good = { type: 'atomic container signature', image: { 'docker-manifest-digest': `sha256:${'b'.repeat(64)}` }, identity: { 'docker-reference': 'r.io/a:1' } };

  it('reads the claims of a simple-signing payload', () => {
    expect(parsePayload(payload(good), 'simple-signing')).toEqual({ dockerReference: 'r.io/a:1', manifestDigest: `sha256:${'b'.repeat(64)}` });
  });

  it('refuses an unknown critical key, a missing one, another type, a bad digest, and a null optional outside cosign', () => {
    expect(() => parsePayload(payload({ ...good, extra: 1 }), 'simple-signing')).toThrow('Unknown key "extra" in critical');
    expect(() => parsePayload(payload({ type: good.type, image: good.image }), 'simple-signing')).toThrow('Key "identity" missing in critical');
    expect(() => parsePayload(payload(good), 'cosign')).toThrow('Unrecognized signature type atomic container signature');
    expect(() => parsePayload(payload({ ...good, image: { 'docker-manifest-digest': 'sha256:XYZ' } }), 'simple-signing')).toThrow('invalid docker-manifest-digest');
    expect(() => parsePayload(payload(good, null), 'simple-signing')).toThrow('optional is not a JSON object');
    expect(parsePayload(payload({ ...good, type: 'cosign container image signature' }, null), 'cosign').dockerReference).toBe('r.io/a:1');
  });
});

describe('containers-policy.json', () => {
  const parse = (doc: unknown) => parsePolicy(JSON.stringify(doc), '/etc/p.json');

  it('reads requirements by scope, with keys read when the policy is', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'k.pem'), crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
    const policy = await parse({ default: [{ type: 'reject' }], transports: { docker: { 'r.io/a': [{ type: 'sigstoreSigned', keyPath: path.join(dir, 'k.pem') }], '': [{ type: 'insecureAcceptAnything' }] } } });
    expect(policy.default).toEqual([{ type: 'reject' }]);
    expect(policy.docker.get('r.io/a')![0]).toMatchObject({ type: 'sigstoreSigned', signedIdentity: { type: 'matchRepoDigestOrExact' } });
    expect(policy.docker.get('')).toEqual([{ type: 'insecureAcceptAnything' }]);
  });

  it('refuses what containers/image refuses, and what berth cannot apply', async () => {
    await expect(parse({ default: [{ type: 'reject' }], foo: 1 })).rejects.toThrow('unknown key "foo"');
    await expect(parse({ transports: {} })).rejects.toThrow('the default policy is missing');
    await expect(parse({ default: [] })).rejects.toThrow('must not be empty');
    await expect(parse({ default: [{ type: 'signedBy', keyPath: '/k' }] })).rejects.toThrow('keyType "" is not supported');
    await expect(parse({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/nonexistent.gpg' }] })).rejects.toThrow('reading /nonexistent.gpg');
    await expect(parse({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyData: Buffer.from('not a key').toString('base64') }] })).rejects.toThrow('the GPG keys do not parse');
    await expect(parse({ default: [{ type: 'sigstoreSigned', pki: { caRootsPath: '/ca' } }] })).rejects.toThrow('pki (certificates of a private CA without Fulcio) is not supported by berth');
    await expect(parse({ default: [{ type: 'sigstoreSigned', fulcio: { caData: 'AA==', oidcIssuer: 'https://i', subjectEmail: 'e@x' } }] })).rejects.toThrow('the CA holds no PEM certificate');
    await expect(parse({ default: [{ type: 'sigstoreSigned' }] })).rejects.toThrow('needs exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio');
    await expect(parse({ default: [{ type: 'insecureAcceptAnything', keyPath: '/k' }] })).rejects.toThrow('unknown key "keyPath"');
    await expect(parse({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyData: 'AA==', keyPath: '/k' }] })).rejects.toThrow('exactly one of keyPath, keyPaths, keyData');
    await expect(parse({ default: [{ type: 'reject' }], transports: { docker: { 'r.io': [{ type: 'mystery' }] } } })).rejects.toThrow('unknown requirement type "mystery"');
  });
});

describe('registries.d', () => {
  it('takes each setting from the most specific scope that sets it, then default-docker', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'a.yaml'), 'default-docker:\n  lookaside: https://sigs.example/default\ndocker:\n  r.io/team:\n    use-sigstore-attachments: true\n');
    fs.writeFileSync(path.join(dir, 'b.yaml'), 'docker:\n  r.io:\n    sigstore: https://sigs.example/r\n');
    fs.writeFileSync(path.join(dir, 'ignored.conf'), 'not: [yaml');
    const config = await loadRegistriesD(dir);
    expect(signatureSources(config, parseReference('r.io/team/app:1'))).toEqual({ lookaside: 'https://sigs.example/r', useSigstoreAttachments: true });
    expect(signatureSources(config, parseReference('other.io/x:1'))).toEqual({ lookaside: 'https://sigs.example/default', useSigstoreAttachments: false });
    expect(signatureSources(await loadRegistriesD(path.join(dir, 'none')), parseReference('x.io/y:1')).lookaside).toBe('file:///var/lib/containers/sigstore');
  });

  it('refuses a scope defined twice, an unknown key, and a lookaside that is not a URL', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'a.yaml'), 'docker:\n  r.io:\n    lookaside: https://a\n');
    fs.writeFileSync(path.join(dir, 'b.yaml'), 'docker:\n  r.io:\n    lookaside: https://b\n');
    await expect(loadRegistriesD(dir)).rejects.toThrow('"docker" namespace "r.io" defined both in');
    fs.writeFileSync(path.join(dir, 'b.yaml'), 'docker:\n  s.io:\n    lookasid: https://b\n');
    await expect(loadRegistriesD(dir)).rejects.toThrow('unknown key "lookasid"');
    fs.writeFileSync(path.join(dir, 'b.yaml'), 'docker:\n  s.io:\n    lookaside: /srv/sigs\n');
    await expect(loadRegistriesD(dir)).rejects.toThrow('is not a file://, http:// or https:// URL');
  });
});

describe('registries: mirror_only and blocked', () => {
  const config = (text: string) => {
    const file = path.join(tmp(), 'berth.toml');
    fs.writeFileSync(file, text);
    return loadConfig({ path: file, explicit: true });
  };

  it('mirror_only never names the registry itself; blocked refuses every endpoint', () => {
    const c = config('[image.registries."r.io"]\nmirrors = ["mirror.local:5000"]\nmirror_only = true\n[image.registries."bad.io"]\nmirrors = ["mirror.local:5000"]\nblocked = true\n');
    expect(endpointsFor('r.io', c.image.registries).map((e) => e.url)).toEqual(['https://mirror.local:5000']);
    expect(() => endpointsFor('bad.io', c.image.registries)).toThrow('registry bad.io is blocked by berth\'s configuration');
  });

  it('refuses mirror_only without mirrors at start-up', () => {
    expect(() => config('[image.registries."r.io"]\nmirror_only = true\n')).toThrow(ConfigError);
  });
});
