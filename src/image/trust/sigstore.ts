// Sigstore (cosign) signatures: the signature over the payload, by a public key of the policy or by a
// Fulcio certificate (chained to the policy's CA, issued for the policy's OIDC issuer and email, valid
// when Rekor logged it), and, where the policy names Rekor's key, the Rekor signed entry timestamp (SET)
// of cosign's bundle annotation: it must be Rekor's, over a hashedrekord entry of this very payload,
// signature and key. As containers/image (signature/sigstore) checks them.
import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import { ASN1Obj, json, X509Certificate as Asn1Certificate } from '@sigstore/core';

export interface FulcioTrust {
  roots: X509Certificate[];
  oidcIssuer: string;
  subjectEmail: string;
}

export interface SigstoreTrust {
  keys: KeyObject[];
  fulcio?: FulcioTrust;
  rekorKeys: KeyObject[];
}

/** A cosign signature as attached: the payload, its signature, and the annotations that vouch for it. */
export interface CosignSignature {
  payload: Buffer;
  signature: Buffer;
  /** dev.sigstore.cosign/certificate: the signer's PEM certificate (Fulcio). */
  certificate?: string;
  /** dev.sigstore.cosign/chain: PEM intermediates (and perhaps the root). */
  chain?: string;
  /** dev.sigstore.cosign/bundle: Rekor's SET and entry. */
  bundle?: string;
}

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
/** Fulcio's OIDC issuer extensions: the current (a DER UTF8String) and the first (the raw string). */
const OIDC_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';
const OIDC_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';

const sha256 = (data: crypto.BinaryLike) => crypto.createHash('sha256').update(data).digest();
const hashFor = (key: KeyObject) => (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256');
const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });

interface RekorBundle {
  SignedEntryTimestamp?: unknown;
  Payload?: { body?: unknown; integratedTime?: unknown; logIndex?: unknown; logID?: unknown };
}

interface HashedRekord {
  apiVersion?: unknown;
  kind?: unknown;
  spec?: { data?: { hash?: { algorithm?: unknown; value?: unknown } }; signature?: { content?: unknown; publicKey?: { content?: unknown } } };
}

/**
 * Checks the SET against Rekor's keys and its entry against the signature; returns when Rekor logged it.
 * `signer` is the PEM Rekor recorded the signature with: the certificate, or the public key.
 */
function verifyRekorBundle(sig: CosignSignature, rekorKeys: KeyObject[], signer: { cert?: X509Certificate; key?: KeyObject }): Date {
  if (!sig.bundle) throw new Error('missing dev.sigstore.cosign/bundle annotation (the Rekor entry the policy requires)');
  const bundle = JSON.parse(sig.bundle) as RekorBundle;
  const p = bundle.Payload;
  if (typeof bundle.SignedEntryTimestamp !== 'string' || !p || typeof p.body !== 'string' || !Number.isInteger(p.integratedTime) || !Number.isInteger(p.logIndex) || typeof p.logID !== 'string') {
    throw new Error('the Rekor bundle is malformed');
  }
  const signed = Buffer.from(json.canonicalize({ body: p.body, integratedTime: p.integratedTime, logIndex: p.logIndex, logID: p.logID }));
  const set = Buffer.from(bundle.SignedEntryTimestamp, 'base64');
  const rekor = rekorKeys.find((k) => crypto.verify(hashFor(k), signed, k, set));
  if (!rekor) throw new Error('the Rekor signed entry timestamp is not signed by a Rekor key of the policy');
  if (p.logID !== sha256(spki(rekor)).toString('hex')) throw new Error(`the Rekor entry's log ID ${p.logID} is not the log of the policy's Rekor key`);
  const entry = JSON.parse(Buffer.from(p.body, 'base64').toString('utf8')) as HashedRekord;
  if (entry.kind !== 'hashedrekord' || entry.apiVersion !== '0.0.1') throw new Error(`the Rekor entry is a ${String(entry.kind)} ${String(entry.apiVersion)}, not a hashedrekord 0.0.1`);
  const hash = entry.spec?.data?.hash;
  if (hash?.algorithm !== 'sha256' || hash.value !== sha256(sig.payload).toString('hex')) throw new Error('the Rekor entry is for another payload');
  if (typeof entry.spec?.signature?.content !== 'string' || !Buffer.from(entry.spec.signature.content, 'base64').equals(sig.signature)) throw new Error('the Rekor entry is for another signature');
  const recorded = entry.spec.signature.publicKey?.content;
  if (typeof recorded !== 'string') throw new Error('the Rekor entry names no public key');
  const pem = Buffer.from(recorded, 'base64').toString('utf8');
  const same = signer.cert ? pem.includes('CERTIFICATE') && new X509Certificate(pem).raw.equals(signer.cert.raw) : !pem.includes('CERTIFICATE') && spki(crypto.createPublicKey(pem)).equals(spki(signer.key!));
  if (!same) throw new Error('the Rekor entry is for another signer');
  return new Date((p.integratedTime as number) * 1000);
}

/** The certificates of a PEM text (none for none); throws when one does not parse. */
export function pemCertificates(text: string | undefined): X509Certificate[] {
  if (!text) return [];
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
}

const validAt = (cert: X509Certificate, at: Date) => new Date(cert.validFrom) <= at && at <= new Date(cert.validTo);

/** The Fulcio certificate's issuer, from either of Fulcio's extensions. */
function oidcIssuerOf(cert: X509Certificate): string | undefined {
  const parsed = Asn1Certificate.parse(cert.toString());
  // The extension's value: a DER UTF8String (v2), or the string's bytes themselves (v1).
  const v2 = parsed.extension(OIDC_ISSUER_V2);
  if (v2) return ASN1Obj.parseBuffer(Buffer.from(v2.value)).value.toString('utf8');
  return parsed.extension(OIDC_ISSUER_V1)?.value.toString('utf8');
}

/** The leaf, chained through the annotation's certificates to a root of the policy, as of `at`. */
function verifyFulcioCertificate(sig: CosignSignature, trust: FulcioTrust, at: Date): X509Certificate {
  const [leaf] = pemCertificates(sig.certificate);
  if (!leaf) throw new Error('missing dev.sigstore.cosign/certificate annotation (the Fulcio certificate the policy requires)');
  const pool = pemCertificates(sig.chain);
  let cert = leaf;
  for (let depth = 0; ; depth++) {
    if (!validAt(cert, at)) throw new Error(`certificate ${cert.subject.replace(/\n/g, ', ')} is not valid at ${at.toISOString()}, when Rekor logged the signature`);
    const root = trust.roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    if (root) {
      if (!validAt(root, at)) throw new Error(`the Fulcio root is not valid at ${at.toISOString()}`);
      break;
    }
    const issuer = pool.find((c) => c !== cert && c.ca && cert.checkIssued(c) && cert.verify(c.publicKey));
    if (!issuer || depth > 8) throw new Error('the certificate does not chain to a Fulcio root of the policy');
    cert = issuer;
  }
  if (!(leaf.keyUsage ?? []).includes(CODE_SIGNING)) throw new Error('the certificate is not for code signing');
  const issuer = oidcIssuerOf(leaf);
  if (issuer !== trust.oidcIssuer) throw new Error(`the certificate's OIDC issuer ${JSON.stringify(issuer ?? '')} is not ${JSON.stringify(trust.oidcIssuer)}`);
  const emails = (leaf.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('email:')).map((n) => n.slice('email:'.length));
  if (!emails.includes(trust.subjectEmail)) throw new Error(`the certificate is for ${emails.join(', ') || 'no email'}, not ${trust.subjectEmail}`);
  return leaf;
}

/** Verifies one cosign signature; resolves to who signed (for the record), or throws why not. */
export function verifySigstoreSignature(sig: CosignSignature, trust: SigstoreTrust): string {
  let key: KeyObject;
  let signer: string;
  if (trust.fulcio) {
    const [leaf] = pemCertificates(sig.certificate);
    if (!leaf) throw new Error('missing dev.sigstore.cosign/certificate annotation (the Fulcio certificate the policy requires)');
    const at = verifyRekorBundle(sig, trust.rekorKeys, { cert: leaf });
    verifyFulcioCertificate(sig, trust.fulcio, at);
    key = leaf.publicKey;
    signer = `Fulcio certificate for ${trust.fulcio.subjectEmail} (issuer ${trust.fulcio.oidcIssuer}), logged by Rekor at ${at.toISOString()}`;
  } else {
    const index = trust.keys.findIndex((k) => crypto.verify(hashFor(k), sig.payload, k, sig.signature));
    if (index < 0) throw new Error('cryptographic signature verification failed: no policy key verifies it');
    key = trust.keys[index];
    signer = `sigstore key ${index + 1}`;
    if (trust.rekorKeys.length) signer += `, logged by Rekor at ${verifyRekorBundle(sig, trust.rekorKeys, { key }).toISOString()}`;
  }
  if (!crypto.verify(hashFor(key), sig.payload, key, sig.signature)) throw new Error('cryptographic signature verification failed');
  return signer;
}
