// Image trust at pull: the policy in force for the pull (the pod's namespace's, else the node's) decides
// whether the manifest about to be stored may be, before anything of the image is written. Every
// requirement of the most specific scope must hold; a signature counts only if it verifies with a
// policy key, signs this manifest's digest, and names an identity the requirement admits.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BerthConfig } from '../../config/schema';
import { FailedPreconditionError, InvalidArgumentError, SignatureValidationError } from '../../errors';
import { formatReference, type ImageReference } from '../reference';
import type { FetchOptions, RegistryClient } from '../registry/client';
import { verifyGpgSignature } from './gpg';
import { identityAdmits, type SignedIdentity } from './identity';
import { parsePayload, type PayloadKind } from './payload';
import { parsePolicy, PolicyError, type Requirement, type TrustPolicy } from './policy';
import { loadRegistriesD, signatureSources, type SignatureSources } from './registries-d';
import { mostSpecific } from './scopes';
import { verifySigstoreSignature, type CosignSignature } from './sigstore';
import { cosignSignatures, lookasideSignatures, SignatureFetchError } from './signature-fetch';

/** What admitted an image: kept in its record, shown by ImageStatus verbose. */
export interface Admission {
  /** The policy file, or "" when none is configured (every image accepted unverified). */
  policy: string;
  /** The scope whose requirements applied: a transports.docker scope, or "default". */
  scope: string;
  /** Each requirement and what satisfied it, e.g. "signedBy: GPG key 08CD...". */
  admittedBy: string[];
  /** The manifest digest verified. */
  digest: string;
  verifiedAt: string;
}

/** Counts verifications by outcome and the requirement type (or the reason) that decided. */
export interface TrustMetrics {
  verifications: { inc(labels: { result: string; reason: string }): void };
}

const KUBERNETES_NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A policy read once per change of its file (size, mtime, inode). */
class PolicyCache {
  private readonly cache = new Map<string, { stamp: string; policy: Promise<TrustPolicy> }>();

  /** The policy in `file`, or undefined when there is no such file. */
  async get(file: string): Promise<TrustPolicy | undefined> {
    const st = await fs.promises.stat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!st) return undefined;
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    const hit = this.cache.get(file);
    if (hit?.stamp === stamp) return hit.policy;
    const policy = fs.promises.readFile(file, 'utf8').then((text) => parsePolicy(text, file));
    policy.catch(() => this.cache.delete(file));
    this.cache.set(file, { stamp, policy });
    return policy;
  }
}

/** A requirement's reasons for refusing, or what satisfied it. */
type Verdict = { ok: true; by: string } | { ok: false; reason: string };

export class TrustVerifier {
  private readonly policies = new PolicyCache();

  constructor(
    private readonly config: BerthConfig['image']['trust'],
    private readonly client: RegistryClient,
    private readonly log: Logger,
    private readonly metrics?: TrustMetrics,
  ) {}

  /** The policy file a pull for a pod of `namespace` is judged by ("" for none). */
  async policyFileFor(namespace: string | undefined): Promise<string> {
    const dir = this.config.namespace_policy_dir;
    if (dir && namespace !== undefined) {
      if (!KUBERNETES_NAMESPACE.test(namespace)) throw new InvalidArgumentError(`sandbox_config.metadata.namespace ${JSON.stringify(namespace)} is not a Kubernetes namespace name`);
      const file = path.join(dir, `${namespace}.json`);
      if (await fs.promises.access(file).then(() => true, () => false)) return file;
    }
    return this.config.policy;
  }

  /**
   * Verifies the manifest (its digest and bytes) `ref` resolved to, under `policyFile`. Resolves to what
   * admitted it; rejects with SignatureValidationError (refused) or FailedPreconditionError (a policy or
   * registries.d that cannot be applied).
   */
  async verify(ref: ImageReference, digest: string, policyFile: string, opts: FetchOptions): Promise<Admission> {
    const image = formatReference(ref);
    const admission = (scope: string, admittedBy: string[]): Admission => ({ policy: policyFile, scope, admittedBy, digest, verifiedAt: new Date().toISOString() });
    if (!policyFile) return admission('', ['no policy: accepted unverified']);
    const started = performance.now();
    const policy = await this.load(policyFile);
    const chosen = mostSpecific(ref, (s) => policy.docker.get(s)) ?? (policy.docker.has('') ? { scope: 'docker ""', value: policy.docker.get('')! } : { scope: 'default', value: policy.default });
    const signatures = new SignatureSet(this, ref, digest, opts);
    const admittedBy: string[] = [];
    for (const requirement of chosen.value) {
      const verdict = await this.judge(requirement, ref, digest, signatures);
      if (!verdict.ok) {
        this.metrics?.verifications.inc({ result: 'rejected', reason: requirement.type });
        this.log.warn({ image, digest, policy: policyFile, scope: chosen.scope, requirement: requirement.type, reason: verdict.reason }, 'image refused by the trust policy');
        throw new SignatureValidationError(`image ${image} (${digest}) refused by ${policyFile}, scope ${JSON.stringify(chosen.scope)}: ${verdict.reason}`);
      }
      admittedBy.push(verdict.by);
    }
    this.metrics?.verifications.inc({ result: 'accepted', reason: chosen.value.map((r) => r.type).join('+') });
    this.log.info({ image, digest, policy: policyFile, scope: chosen.scope, admittedBy, ms: Math.round(performance.now() - started) }, 'image admitted by the trust policy');
    return admission(chosen.scope, admittedBy);
  }

  private async load(file: string): Promise<TrustPolicy> {
    try {
      const policy = await this.policies.get(file);
      if (!policy) throw new PolicyError(`${file} does not exist`);
      return policy;
    } catch (err) {
      this.metrics?.verifications.inc({ result: 'rejected', reason: 'policy-error' });
      throw new FailedPreconditionError(`the trust policy cannot be applied: ${(err as Error).message}`);
    }
  }

  private async judge(req: Requirement, ref: ImageReference, digest: string, signatures: SignatureSet): Promise<Verdict> {
    switch (req.type) {
      case 'insecureAcceptAnything':
        return { ok: true, by: 'insecureAcceptAnything' };
      case 'reject':
        return { ok: false, reason: `Running image docker://${formatReference(ref)} is rejected by policy.` };
      case 'signedBy':
        return this.judgeSignatures(await signatures.gpg(), 'GPG', ref, digest, req.signedIdentity, 'simple-signing', async (blob) => {
          const verified = await verifyGpgSignature(blob, req.keyring);
          return { payload: verified.payload, signer: `GPG key ${verified.fingerprint}` };
        });
      case 'sigstoreSigned':
        return this.judgeSignatures(await signatures.cosign(), 'sigstore', ref, digest, req.signedIdentity, 'cosign', async (sig) => ({
          payload: sig.payload,
          signer: verifySigstoreSignature(sig, req),
        }));
    }
  }

  /** One signature that verifies, signs `digest` and names an admitted identity is enough. */
  private async judgeSignatures<S>(
    list: S[] | Error,
    kind: string,
    ref: ImageReference,
    digest: string,
    identity: SignedIdentity,
    payloadKind: PayloadKind,
    verify: (sig: S) => Promise<{ payload: Uint8Array; signer: string }>,
  ): Promise<Verdict> {
    if (list instanceof Error) return { ok: false, reason: list.message };
    if (list.length === 0) return { ok: false, reason: `A signature was required, but no ${kind} signature exists` };
    const reasons: string[] = [];
    for (const sig of list) {
      try {
        const { payload, signer } = await verify(sig);
        const claims = parsePayload(payload, payloadKind);
        if (claims.manifestDigest !== digest) throw new Error(`Signature for digest ${claims.manifestDigest} does not match`);
        if (!identityAdmits(identity, ref, claims.dockerReference)) throw new Error(`Signature for identity ${claims.dockerReference} is not accepted`);
        return { ok: true, by: `${payloadKind === 'cosign' ? 'sigstoreSigned' : 'signedBy'}: ${signer}, identity ${claims.dockerReference}` };
      } catch (err) {
        reasons.push((err as Error).message);
      }
    }
    return { ok: false, reason: reasons.length === 1 ? reasons[0] : `None of the signatures were accepted, reasons: ${reasons.join('; ')}` };
  }

  /** Where `ref`'s signatures are, from registries.d (read per pull: it is a few small files). */
  async sources(ref: ImageReference): Promise<SignatureSources> {
    try {
      return signatureSources(await loadRegistriesD(this.config.registries_d), ref);
    } catch (err) {
      throw new FailedPreconditionError(`${this.config.registries_d} cannot be applied: ${(err as Error).message}`);
    }
  }

  get registry(): RegistryClient {
    return this.client;
  }
}

/** An image's signatures, fetched once per pull, and only if a requirement needs them. */
class SignatureSet {
  private sourcesOf?: Promise<SignatureSources>;
  private gpgList?: Promise<Buffer[] | Error>;
  private cosignList?: Promise<CosignSignature[] | Error>;

  constructor(
    private readonly verifier: TrustVerifier,
    private readonly ref: ImageReference,
    private readonly digest: string,
    private readonly opts: FetchOptions,
  ) {}

  /** registries.d, read once for both kinds of signature. */
  private sources(): Promise<SignatureSources> {
    this.sourcesOf ??= this.verifier.sources(this.ref);
    return this.sourcesOf;
  }

  gpg(): Promise<Buffer[] | Error> {
    this.gpgList ??= this.sources().then((s) => lookasideSignatures(s.lookaside, this.ref, this.digest, this.opts.signal)).catch(fetchFailure);
    return this.gpgList;
  }

  cosign(): Promise<CosignSignature[] | Error> {
    this.cosignList ??= this.sources()
      .then((s) => (s.useSigstoreAttachments ? cosignSignatures(this.verifier.registry, this.ref, this.digest, this.opts) : []))
      .catch(fetchFailure);
    return this.cosignList;
  }
}

/** A failure to read signatures refuses the image; a configuration that cannot be applied is raised. */
function fetchFailure(err: unknown): Error {
  if (err instanceof SignatureFetchError) return err;
  throw err;
}
