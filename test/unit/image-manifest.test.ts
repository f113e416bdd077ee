import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../../src/errors';
import { expectImageManifest, manifestKind, parseImageConfig, parseManifest, selectPlatform, type Descriptor } from '../../src/image/registry/manifest';

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const entry = (n: number, architecture: string, variant?: string): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: d(n),
  size: 100,
  platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) },
});

describe('manifests', () => {
  it('selects linux/amd64, and arm variants as containerd normalises them', () => {
    const index = [entry(1, 'arm', 'v7'), entry(2, 'arm64'), entry(3, 'amd64'), entry(4, 'arm', 'v6')];
    expect(selectPlatform(index, 'linux/amd64', 'x').digest).toBe(d(3));
    expect(selectPlatform(index, 'linux/arm64/v8', 'x').digest).toBe(d(2));
    expect(selectPlatform(index, 'linux/arm', 'x').digest).toBe(d(1));
    expect(selectPlatform(index, 'linux/arm/v6', 'x').digest).toBe(d(4));
    expect(() => selectPlatform(index, 'linux/s390x', 'img')).toThrow(NotFoundError);
    expect(() => selectPlatform(index, 'linux/s390x', 'img')).toThrow('no manifest for platform linux/s390x in img');
  });

  it('refuses hostile or broken documents, naming the field', () => {
    const good = { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d(1), size: 1 }, layers: [] };
    expect(parseManifest(Buffer.from(JSON.stringify(good))).layers).toEqual([]);
    const bad = (v: unknown) => () => parseManifest(Buffer.from(JSON.stringify(v)));
    expect(bad({ ...good, schemaVersion: 1 })).toThrow(/schemaVersion/);
    expect(bad({ ...good, config: { ...good.config, digest: 'sha256:../../etc' } })).toThrow(/manifest.config.digest/);
    expect(bad({ ...good, layers: [{ mediaType: 'application/x-evil', digest: d(2), size: 1 }] })).toThrow(/not a layer type/);
    expect(bad({ ...good, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d(2), size: -1 }] })).toThrow(InvalidArgumentError);
    expect(() => parseManifest(Buffer.from('not json'))).toThrow(/not JSON/);
    expect(() => parseImageConfig(Buffer.from(JSON.stringify({ rootfs: { diff_ids: ['x'] } })))).toThrow(/diff_ids\[0\]/);
  });

  it('tells indexes from manifests by media type, by the document\'s own mediaType, or by shape when the label is generic', () => {
    expect(manifestKind('application/vnd.oci.image.index.v1+json', Buffer.from('{}'))).toBe('index');
    expect(manifestKind('application/vnd.docker.distribution.manifest.v2+json', Buffer.from('{}'))).toBe('manifest');
    expect(manifestKind('application/json', Buffer.from(JSON.stringify({ manifests: [] })))).toBe('index');
    expect(manifestKind('application/json', Buffer.from(JSON.stringify({ layers: [], manifests: [] })))).toBe('manifest');
    expect(manifestKind('', Buffer.from(JSON.stringify({ mediaType: 'application/vnd.oci.image.index.v1+json', layers: [] })))).toBe('index');
  });

  const refused: [string, string, object, RegExp][] = [
    ['an unknown media type', 'application/vnd.evil.manifest+json', { layers: [] }, /media type "application\/vnd.evil.manifest\+json" is not an OCI or Docker schema 2/],
    ['an unknown mediaType in the document', 'application/json', { mediaType: 'application/x-whatever', layers: [] }, /manifest mediaType "application\/x-whatever"/],
    ['a schema 1 manifest by label', 'application/vnd.docker.distribution.manifest.v1+prettyjws', { schemaVersion: 1 }, /Docker schema 1 manifest/],
    ['a schema 1 manifest by its own field', 'application/json', { mediaType: 'application/vnd.docker.distribution.manifest.v1+json' }, /Docker schema 1/],
    ['a label and a document that disagree', 'application/vnd.oci.image.manifest.v1+json', { mediaType: 'application/vnd.oci.image.index.v1+json' }, /served as .* but the document says/],
  ];
  it.each(refused)('refuses %s', (_name, mediaType, doc, message) => {
    expect(() => manifestKind(mediaType, Buffer.from(JSON.stringify(doc)))).toThrow(InvalidArgumentError);
    expect(() => manifestKind(mediaType, Buffer.from(JSON.stringify(doc)))).toThrow(message);
  });

  it('refuses an index chosen from an index, and a manifest whose config is not an image config', () => {
    expect(() => expectImageManifest('application/vnd.oci.image.index.v1+json', Buffer.from('{}'), d(1))).toThrow(/nested indexes are not followed/);
    const artifact = { schemaVersion: 2, config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: d(2), size: 10 }, layers: [] };
    expect(() => parseManifest(Buffer.from(JSON.stringify(artifact)))).toThrow(/is not an image config/);
    // A config declared larger than any image config is never downloaded (and never parsed into memory).
    const huge = { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d(3), size: 10 * 2 ** 30 }, layers: [] };
    expect(() => parseManifest(Buffer.from(JSON.stringify(huge)))).toThrow(/over the 8388608-byte limit/);
  });
});
