import type { ImageFsInfoRequest__Output } from '../../generated/runtime/v1/ImageFsInfoRequest';
import type { ImageFsInfoResponse } from '../../generated/runtime/v1/ImageFsInfoResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

export function imageFsInfo(deps: ServerDeps): UnaryHandler<ImageFsInfoRequest__Output, ImageFsInfoResponse> {
  return async () => {
    const images = deps.images;
    const usage = await images.usage();
    const timestamp = String(BigInt(Date.now()) * 1_000_000n);
    return {
      image_filesystems: [
        {
          timestamp,
          fs_id: { mountpoint: usage.mountpoint },
          used_bytes: { value: String(usage.bytes) },
          inodes_used: { value: String(usage.inodes) },
        },
      ],
      container_filesystems: [],
    };
  };
}
