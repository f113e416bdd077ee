// The images critest v1.26 pulls, built locally from Debian packages (docs/critest.md). Each is pushed
// under its upstream repository path minus the registry host, so that a registry mirror for
// registry.k8s.io and gcr.io serves them: registry.k8s.io/e2e-test-images/busybox:1.29-2 is
// <mirror>/e2e-test-images/busybox:1.29-2.
import type { BuiltImage } from '../../../test/support/oci/image';
import { pushImage } from '../../../test/support/oci/push';
import { critestBusyboxImage } from './busybox';
import { IMAGE_USERS, predefinedGroupImage, testImage, userImage } from './cri-tools';
import { httpdImage } from './httpd';
import { hostnetNginxImage, nginxImage } from './nginx';
import { nonewprivsImage } from './nonewprivs';

export interface CritestImage {
  /** The registry critest names (a mirror for it serves the repository below). */
  registry: 'registry.k8s.io' | 'gcr.io';
  /** Repository path without the registry host, e.g. `e2e-test-images/busybox`. */
  repository: string;
  tags: string[];
  /** Debian packages the image is built from. */
  packages: string[];
  build(): BuiltImage;
}

const E2E = 'e2e-test-images';
const CRI_TOOLS = 'k8s-staging-cri-tools';
const BUSYBOX_PACKAGES = ['busybox (unpacked, not installed)', 'util-linux', 'procps', 'libc6'];

export const CRITEST_IMAGES: readonly CritestImage[] = [
  { registry: 'registry.k8s.io', repository: `${E2E}/busybox`, tags: ['1.29-2'], packages: BUSYBOX_PACKAGES, build: critestBusyboxImage },
  { registry: 'registry.k8s.io', repository: `${E2E}/nginx`, tags: ['1.14-2'], packages: [...BUSYBOX_PACKAGES, 'nginx'], build: nginxImage },
  { registry: 'registry.k8s.io', repository: `${E2E}/httpd`, tags: ['2.4.39-4'], packages: [...BUSYBOX_PACKAGES, 'apache2-bin'], build: httpdImage },
  { registry: 'registry.k8s.io', repository: `${E2E}/nonewprivs`, tags: ['1.3'], packages: [...BUSYBOX_PACKAGES, 'gcc', 'libc6-dev'], build: nonewprivsImage },
  { registry: 'gcr.io', repository: `${CRI_TOOLS}/hostnet-nginx-amd64`, tags: ['latest'], packages: [...BUSYBOX_PACKAGES, 'nginx'], build: hostnetNginxImage },
  { registry: 'gcr.io', repository: `${CRI_TOOLS}/test-image-predefined-group`, tags: ['latest'], packages: BUSYBOX_PACKAGES, build: predefinedGroupImage },
  ...Object.entries(IMAGE_USERS).map(([name, user]): CritestImage => ({
    registry: 'gcr.io',
    repository: `${CRI_TOOLS}/${name}`,
    tags: ['latest'],
    packages: BUSYBOX_PACKAGES,
    build: () => userImage(user),
  })),
  ...['test-image-1', 'test-image-2', 'test-image-3', 'test-image-latest', 'test-image-digest'].map(
    (name): CritestImage => ({ registry: 'gcr.io', repository: `${CRI_TOOLS}/${name}`, tags: ['latest'], packages: BUSYBOX_PACKAGES, build: () => testImage(name) }),
  ),
  // One image under three tags.
  { registry: 'gcr.io', repository: `${CRI_TOOLS}/test-image-tags`, tags: ['1', '2', '3'], packages: BUSYBOX_PACKAGES, build: () => testImage('same-image') },
  // Two images: TEST=test and TEST=all, as images/build makes them.
  { registry: 'gcr.io', repository: `${CRI_TOOLS}/test-image-tag`, tags: ['test'], packages: BUSYBOX_PACKAGES, build: () => testImage('test') },
  { registry: 'gcr.io', repository: `${CRI_TOOLS}/test-image-tag`, tags: ['all'], packages: BUSYBOX_PACKAGES, build: () => testImage('all') },
];

/** The upstream references of an image, e.g. `gcr.io/k8s-staging-cri-tools/test-image-tags:1`. */
export function upstreamReferences(image: CritestImage): string[] {
  return image.tags.map((t) => `${image.registry}/${image.repository}:${t}`);
}

export interface PushedCritestImage {
  image: CritestImage;
  /** e.g. `127.0.0.1:5001/e2e-test-images/busybox:1.29-2`. */
  references: string[];
  digest: string;
  built: BuiltImage;
}

/**
 * Builds and pushes every critest image (or those whose repository path contains one of `only`) to the
 * plain-HTTP registry at host (host:port); `log` hears of each.
 */
export async function pushCritestImages(host: string, only?: readonly string[], log: (line: string) => void = () => undefined): Promise<PushedCritestImage[]> {
  const images = only?.length ? CRITEST_IMAGES.filter((i) => only.some((o) => i.repository.includes(o))) : CRITEST_IMAGES;
  if (!images.length) throw new Error(`no critest image matches ${only?.join(', ')}`);
  const pushed: PushedCritestImage[] = [];
  for (const image of images) {
    const built = image.build();
    const digest = await pushImage({ host, repository: image.repository }, built, image.tags);
    const references = image.tags.map((t) => `${host}/${image.repository}:${t}`);
    log(`${references.join(' ')} ${digest}`);
    pushed.push({ image, references, digest, built });
  }
  return pushed;
}
