import type { StreamImagesRequest__Output } from '../../generated/runtime/v1/StreamImagesRequest';
import type { StreamImagesResponse } from '../../generated/runtime/v1/StreamImagesResponse';
import type { StreamHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { imageMessage } from './image-message';
import { pagesOf } from './pages';

/** ListImages' items (a filter image: just the image it names), a page at a time (pages.ts). */
export function streamImages(deps: ServerDeps): StreamHandler<StreamImagesRequest__Output, StreamImagesResponse> {
  return async function* (request) {
    const images = deps.images;
    const wanted = request.filter?.image?.image;
    const found = wanted ? await images.find(wanted) : undefined;
    const all = wanted ? (found ? [found] : []) : await images.list();
    for await (const page of pagesOf(all)) yield { images: page.map((image) => imageMessage(image, images)) };
  };
}
