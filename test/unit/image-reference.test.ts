import { describe, expect, it } from 'vitest';
import { formatReference, parseReference } from '../../src/image/reference';
import { InvalidArgumentError } from '../../src/errors';

const D = `sha256:${'a'.repeat(64)}`;

describe('image references', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['user/app', 'docker.io/user/app:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
    ['127.0.0.1:5000/a/b/c:v1', '127.0.0.1:5000/a/b/c:v1'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app', 'localhost:5000/app:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`gcr.io/x/busybox:1.2@${D}`, `gcr.io/x/busybox:1.2@${D}`],
    ['my-registry.example.com:443/team/app_name__x:tag.1-rc', 'my-registry.example.com:443/team/app_name__x:tag.1-rc'],
  ])('%s → %s', (input, canonical) => {
    expect(formatReference(parseReference(input))).toBe(canonical);
  });

  it('keeps the parts apart', () => {
    expect(parseReference(`gcr.io/x/busybox:1.2@${D}`)).toEqual({ registry: 'gcr.io', repository: 'x/busybox', tag: '1.2', digest: D });
  });

  it.each([
    ['', /empty/],
    ['Busybox', /lowercase/],
    ['busybox:', /tag "" is not valid/],
    ['busybox@sha256:abc', /digest/],
    ['a//b', /path component ""/],
    ['busy box', /white space/],
    ['busybox:-bad', /tag/],
    ['-start/x', /path component/],
  ])('refuses %j', (input, why) => {
    expect(() => parseReference(input)).toThrow(InvalidArgumentError);
    expect(() => parseReference(input)).toThrow(why);
  });
});
