import type { PullImageRequest__Output } from '../../generated/runtime/v1/PullImageRequest';
import type { PullImageResponse } from '../../generated/runtime/v1/PullImageResponse';
import type { AuthConfig__Output } from '../../generated/runtime/v1/AuthConfig';
import { InvalidArgumentError } from '../../errors';
import type { PullRequester } from '../../image/pull';
import type { Credentials } from '../../image/registry/client';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { metadataName } from './field-rules';

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

/**
 * The pod a pull is for (sandbox_config: "pull the image in the PodSandbox context"): its namespace picks
 * the trust policy, and it is named in the pull's log lines. Its metadata is checked as RunPodSandbox
 * checks it.
 */
function requesterOf(config: PullImageRequest__Output['sandbox_config']): PullRequester | undefined {
  const meta = config?.metadata;
  if (!meta) return undefined;
  return { namespace: metadataName('sandbox_config.metadata.namespace', meta.namespace), name: metadataName('sandbox_config.metadata.name', meta.name) };
}

/** image_ref is the image ID (the config digest), as containerd and CRI-O return. */
export function pullImage(deps: ServerDeps): UnaryHandler<PullImageRequest__Output, PullImageResponse> {
  return async (request, ctx) => {
    const name = request.image?.image;
    if (!name) throw new InvalidArgumentError('PullImage: image.image is empty');
    // The CRI: a pull for a runtime handler berth does not know is refused.
    const handler = request.image?.runtime_handler ?? '';
    if (handler && !(handler in deps.config.runtime.handlers)) {
      throw new InvalidArgumentError(`PullImage: unknown runtime handler ${JSON.stringify(handler)}: configured are ${Object.keys(deps.config.runtime.handlers).join(', ')}`);
    }
    const image = await deps.images.pull(name, credentialsOf(request.auth), ctx.signal, requesterOf(request.sandbox_config));
    return { image_ref: image.id };
  };
}
