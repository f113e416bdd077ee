// The project's test images, built from Debian packages on this machine. A later issue adds an image
// by adding a definition here; tests push the same definitions into their own registries.
import type { BuiltImage } from '../../test/support/oci/image';
import { pushImage, type PushTarget } from '../../test/support/oci/push';
import { busyboxImage } from './busybox';

export interface TestImage {
  repository: string;
  tags: string[];
  build(): BuiltImage;
}

export const TEST_IMAGES: readonly TestImage[] = [{ repository: 'busybox', tags: ['latest', '1.36'], build: busyboxImage }];

/** Builds and pushes every test image (or those named) to a plain-HTTP registry at host:port. */
export async function pushTestImages(
  host: string,
  only?: readonly string[],
  auth?: PushTarget['auth'],
): Promise<Record<string, string>> {
  const digests: Record<string, string> = {};
  for (const image of TEST_IMAGES) {
    if (only && !only.includes(image.repository)) continue;
    digests[image.repository] = await pushImage({ host, repository: image.repository, auth }, image.build(), image.tags);
  }
  return digests;
}
