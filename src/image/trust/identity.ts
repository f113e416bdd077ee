// signedIdentity (containers-policy.json(5)): whether the reference a signature names admits the image
// being pulled. References compare in their normalised form (docker.io/library/busybox:latest).
import { formatReference, parseReference, repositoryName, type ImageReference } from '../reference';

export type SignedIdentity =
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

/** A reference as a signature names it: nameOnly when it has neither tag nor digest. */
interface SignedReference {
  ref: ImageReference;
  nameOnly: boolean;
}

export function parseSignedReference(text: string): SignedReference {
  const ref = parseReference(text);
  const last = text.slice(text.lastIndexOf('/') + 1);
  return { ref, nameOnly: !last.includes(':') && !last.includes('@') };
}

function repoDigestOrExact(image: ImageReference, signed: SignedReference): boolean {
  if (signed.nameOnly) return false;
  if (image.digest) return repositoryName(image) === repositoryName(signed.ref);
  return formatReference(image) === formatReference(signed.ref);
}

/** Whether `identity` admits a signature for `signedText` on `image`. */
export function identityAdmits(identity: SignedIdentity, image: ImageReference, signedText: string): boolean {
  let signed: SignedReference;
  try {
    signed = parseSignedReference(signedText);
  } catch {
    return false;
  }
  switch (identity.type) {
    case 'matchRepoDigestOrExact':
      return repoDigestOrExact(image, signed);
    case 'matchExact':
      return !signed.nameOnly && formatReference(image) === formatReference(signed.ref);
    case 'matchRepository':
      return repositoryName(image) === repositoryName(signed.ref);
    case 'exactReference':
      return !signed.nameOnly && formatReference(parseReference(identity.dockerReference)) === formatReference(signed.ref);
    case 'exactRepository':
      return repositoryName(parseReference(identity.dockerRepository)) === repositoryName(signed.ref);
    case 'remapIdentity': {
      const name = repositoryName(image);
      if (name !== identity.prefix && !name.startsWith(`${identity.prefix}/`)) return repoDigestOrExact(image, signed);
      const remapped = parseReference(formatReference(image).replace(identity.prefix, identity.signedPrefix));
      return repoDigestOrExact(remapped, signed);
    }
  }
}
