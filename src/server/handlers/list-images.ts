import type { ListImagesRequest__Output } from '../../generated/runtime/v1/ListImagesRequest';
import type { ListImagesResponse } from '../../generated/runtime/v1/ListImagesResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { imageMessage } from './image-message';

/** With a filter image, lists just the image that name resolves to (as containerd and CRI-O do). */
export function listImages(deps: ServerDeps): UnaryHandler<ListImagesRequest__Output, ListImagesResponse> {
  return async (request) => {
    const images = deps.images;
    const wanted = request.filter?.image?.image;
    if (wanted) {
      const image = await images.find(wanted);
      return { images: image ? [imageMessage(image, images)] : [] };
    }
    return { images: (await images.list()).map((image) => imageMessage(image, images)) };
  };
}
