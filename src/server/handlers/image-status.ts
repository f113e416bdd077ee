import type { ImageStatusRequest__Output } from '../../generated/runtime/v1/ImageStatusRequest';
import type { ImageStatusResponse } from '../../generated/runtime/v1/ImageStatusResponse';
import { InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { imageMessage } from './image-message';

/** A missing image is an empty response, not an error: that is how the kubelet learns it must pull. */
export function imageStatus(deps: ServerDeps): UnaryHandler<ImageStatusRequest__Output, ImageStatusResponse> {
  return async (request) => {
    const images = deps.images;
    const name = request.image?.image;
    if (!name) throw new InvalidArgumentError('ImageStatus: image.image is empty');
    const image = await images.find(name);
    if (!image) return {};
    const info: Record<string, string> = {};
    if (request.verbose) {
      info.info = JSON.stringify({
        id: image.id,
        chainIds: image.layers.map((l) => l.chainId),
        manifestDigests: image.manifestDigests,
        imageSpec: await images.configOf(image),
        // What the trust policy admitted the image by at its last pull (none for an import).
        ...(image.trust ? { trust: image.trust } : {}),
      });
    }
    return { image: imageMessage(image, images), info };
  };
}
