import type { RemoveImageRequest__Output } from '../../generated/runtime/v1/RemoveImageRequest';
import type { RemoveImageResponse } from '../../generated/runtime/v1/RemoveImageResponse';
import { InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

/** Idempotent: removing an image that is not there succeeds. */
export function removeImage(deps: ServerDeps): UnaryHandler<RemoveImageRequest__Output, RemoveImageResponse> {
  return async (request) => {
    const images = deps.images;
    const name = request.image?.image;
    if (!name) throw new InvalidArgumentError('RemoveImage: image.image is empty');
    await images.remove(name);
    return {};
  };
}
