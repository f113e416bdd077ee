// The payload a signature signs (containers-signature(5)): {"critical": {"type", "image":
// {"docker-manifest-digest"}, "identity": {"docker-reference"}}, "optional": {...}}. Read as strictly as
// containers/image reads it: exactly these keys under "critical", an object (or, for cosign, null) as
// "optional", and the type of the signature's kind.

export type PayloadKind = 'simple-signing' | 'cosign';

const TYPES: Record<PayloadKind, string> = {
  'simple-signing': 'atomic container signature',
  cosign: 'cosign container image signature',
};

export interface SignedClaims {
  /** The reference the signer named. */
  dockerReference: string;
  /** The manifest digest the signer signed. */
  manifestDigest: string;
}

/** A payload that does not hold: the reason is the message. */
export class PayloadError extends Error {}

const DIGEST = /^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/;

function objectAt(value: unknown, where: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PayloadError(`${where} is not a JSON object`);
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (!keys.includes(k)) throw new PayloadError(`Unknown key ${JSON.stringify(k)} in ${where}`);
  for (const k of keys) if (!(k in obj)) throw new PayloadError(`Key ${JSON.stringify(k)} missing in ${where}`);
  return obj;
}

function stringAt(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new PayloadError(`${where} is not a string`);
  return value;
}

export function parsePayload(bytes: Uint8Array, kind: PayloadKind): SignedClaims {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new PayloadError(`the signed payload is not JSON: ${(err as Error).message}`);
  }
  const top = objectAt(doc, 'the signed payload', ['critical', 'optional']);
  const optional = top.optional;
  if (!(kind === 'cosign' && optional === null)) objectAt(optional, 'optional', Object.keys((optional ?? {}) as object));
  const critical = objectAt(top.critical, 'critical', ['type', 'image', 'identity']);
  const type = stringAt(critical.type, 'critical.type');
  if (type !== TYPES[kind]) throw new PayloadError(`Unrecognized signature type ${type}`);
  const image = objectAt(critical.image, 'critical.image', ['docker-manifest-digest']);
  const identity = objectAt(critical.identity, 'critical.identity', ['docker-reference']);
  const manifestDigest = stringAt(image['docker-manifest-digest'], 'critical.image.docker-manifest-digest');
  if (!DIGEST.test(manifestDigest)) throw new PayloadError(`invalid docker-manifest-digest value ${JSON.stringify(manifestDigest)}`);
  return { dockerReference: stringAt(identity['docker-reference'], 'critical.identity.docker-reference'), manifestDigest };
}
