import type { ListImagesRequest__Output } from '../../generated/runtime/v1/ListImagesRequest';
import type { ListImagesResponse } from '../../generated/runtime/v1/ListImagesResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { imageMessage } from './image-message';
import type { ImageRecord } from '../../image/image-store';

/** With a filter image, lists just the image that name resolves to (as containerd and CRI-O do). */
export function listImages(deps: ServerDeps): UnaryHandler<ListImagesRequest__Output, ListImagesResponse> {
  // The store hands out the same list until it changes, so its response is built once per change (and,
  // being the same object, encoded once: see encoded-responses.ts).
  const built = new WeakMap<readonly ImageRecord[], ListImagesResponse>();
  return async (request) => {
    const images = deps.images;
    const wanted = request.filter?.image?.image;
    if (wanted) {
      const image = await images.find(wanted);
      return { images: image ? [imageMessage(image, images)] : [] };
    }
    const all = await images.list();
    let response = built.get(all);
    if (!response) {
      response = { images: all.map((image) => imageMessage(image, images)) };
      built.set(all, response);
    }
    return response;
  };
}
