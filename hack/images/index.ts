// The project's test images, built from Debian packages on this machine. A later issue adds an image
// by adding a definition to TEST_IMAGES; tests push the same definitions into their own registries
// (pushTestImages), and hack/test-images.ts pushes them from the command line.
import type { BuiltImage } from '../../test/support/oci/image';
import { pushImage, type PushTarget } from '../../test/support/oci/push';
import { busyboxImage } from './busybox';

export interface TestImage {
  /** Repository name in the registry, e.g. `busybox` (pulled as 127.0.0.1:PORT/busybox:latest). */
  repository: string;
  tags: string[];
  /** Debian packages the image is built from (hack/install.sh installs them). */
  packages: string[];
  build(): BuiltImage;
}

export const TEST_IMAGES: readonly TestImage[] = [
  { repository: 'busybox', tags: ['latest', '1.36'], packages: ['busybox-static'], build: busyboxImage },
];

export function testImage(repository: string): TestImage {
  const image = TEST_IMAGES.find((i) => i.repository === repository);
  if (!image) throw new Error(`no test image ${repository} (there are: ${TEST_IMAGES.map((i) => i.repository).join(', ')})`);
  return image;
}

/**
 * Builds and pushes every test image (or those named) to a plain-HTTP registry at host:port; returns
 * the manifest digest of each, by repository.
 */
export async function pushTestImages(host: string, only?: readonly string[], auth?: PushTarget['auth']): Promise<Record<string, string>> {
  const images = only ? only.map(testImage) : TEST_IMAGES;
  const digests: Record<string, string> = {};
  for (const image of images) {
    digests[image.repository] = await pushImage({ host, repository: image.repository, auth }, image.build(), image.tags);
  }
  return digests;
}
