import type { PullImageRequest__Output } from '../../generated/runtime/v1/PullImageRequest';
import type { PullImageResponse } from '../../generated/runtime/v1/PullImageResponse';
import type { AuthConfig__Output } from '../../generated/runtime/v1/AuthConfig';
import { InvalidArgumentError } from '../../errors';
import type { Credentials } from '../../image/registry/client';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';

function credentialsOf(auth: AuthConfig__Output | null): Credentials | undefined {
  if (!auth) return undefined;
  const creds: Credentials = {
    username: auth.username || undefined,
    password: auth.password || undefined,
    auth: auth.auth || undefined,
    identityToken: auth.identity_token || undefined,
    registryToken: auth.registry_token || undefined,
  };
  return Object.values(creds).some((v) => v !== undefined) ? creds : undefined;
}

/** image_ref is the image ID (the config digest), as containerd and CRI-O return. */
export function pullImage(deps: ServerDeps): UnaryHandler<PullImageRequest__Output, PullImageResponse> {
  return async (request, ctx) => {
    const name = request.image?.image;
    if (!name) throw new InvalidArgumentError('PullImage: image.image is empty');
    const image = await deps.images.pull(name, credentialsOf(request.auth), ctx.signal);
    return { image_ref: image.id };
  };
}
