// An image record as the CRI's Image message.
import type { Image } from '../../generated/runtime/v1/Image';
import type { ImageRecord } from '../../image/image-store';
import type { ImageService } from '../../image/image-service';

/** USER "1000" or "1000:50" gives a uid; "nginx" or "nginx:www" a username (as containerd reports). */
export function userOf(user: string): Pick<Image, 'uid' | 'username'> {
  const name = user.split(':')[0];
  if (name === '') return { username: '' };
  if (/^\d+$/.test(name)) return { uid: { value: name }, username: '' };
  return { username: name };
}

export function imageMessage(image: ImageRecord, images: ImageService): Image {
  return {
    id: image.id,
    repo_tags: image.repoTags,
    repo_digests: image.repoDigests,
    size: String(image.size),
    ...userOf(image.user),
    spec: { image: image.id },
    pinned: images.isPinned(image),
  };
}
