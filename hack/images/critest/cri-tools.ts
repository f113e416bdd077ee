// The gcr.io/k8s-staging-cri-tools/test-image-* images, as cri-tools' images/build makes them, all over
// the critest busybox layer:
//   image-user:             USER 1002 | www-data | 1003:1004 | www-data:1004 (no layer of their own)
//   image-predefined-group: default-user (uid 1000) in group-defined-in-image (gid 50000), USER 1000
//   image-test:             one empty file named after the image (TEST=test-image-1, ...), so that
//                           test-image-1/2/3 are different images and test-image-tags:1/2/3 one image
// test-image-digest cannot be upstream's image byte for byte, so the digest critest pulls
// (pkg/validate/consts.go) never exists here: that one spec is expected to fail.
import { buildImage, layer, type BuiltImage } from '../../../test/support/oci/image';
import { BUSYBOX_CONFIG, busyboxLayer, GROUP, PASSWD } from './busybox';

/** USER of each image-user image (images/build's IMAGE_USERS). */
export const IMAGE_USERS: Readonly<Record<string, string>> = {
  'test-image-user-uid': '1002',
  'test-image-user-username': 'www-data',
  'test-image-user-uid-group': '1003:1004',
  'test-image-user-username-group': 'www-data:1004',
};

export function userImage(user: string): BuiltImage {
  return buildImage([busyboxLayer()], { ...BUSYBOX_CONFIG, User: user });
}

/** images/image-predefined-group: `adduser -u 1000 -D default-user; addgroup -g 50000 group-defined-in-image; addgroup default-user group-defined-in-image`. */
export function predefinedGroupImage(): BuiltImage {
  return buildImage(
    [
      busyboxLayer(),
      layer([
        { type: 'dir', path: 'etc/' },
        { type: 'file', path: 'etc/group', content: `${GROUP}default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n` },
        { type: 'file', path: 'etc/passwd', content: `${PASSWD}default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n` },
        { type: 'dir', path: 'home/' },
        { type: 'dir', path: 'home/default-user/', uid: 1000, gid: 1000 },
      ]),
    ],
    { ...BUSYBOX_CONFIG, User: '1000' },
  );
}

/** images/image-test with TEST=name: busybox plus an empty file /name. */
export function testImage(name: string): BuiltImage {
  return buildImage([busyboxLayer(), layer([{ type: 'file', path: name, content: '' }])], BUSYBOX_CONFIG);
}
