// The trust policy in force, as `berthd config` shows it: each scope and its requirements in a line,
// with the keys named by fingerprint (GPG) or SHA-256 of the public key (sigstore).
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BerthConfig } from '../../config/schema';
import { FailedPreconditionError } from '../../errors';
import type { SignedIdentity } from './identity';
import { parsePolicy, type Requirement, type TrustPolicy } from './policy';

function identity(id: SignedIdentity): string {
  switch (id.type) {
    case 'exactReference':
      return ` identity exactReference ${id.dockerReference}`;
    case 'exactRepository':
      return ` identity exactRepository ${id.dockerRepository}`;
    case 'remapIdentity':
      return ` identity remapIdentity ${id.prefix} -> ${id.signedPrefix}`;
    case 'matchRepoDigestOrExact':
      return '';
    default:
      return ` identity ${id.type}`;
  }
}

function requirement(r: Requirement): string {
  switch (r.type) {
    case 'signedBy':
      return `signedBy GPG ${r.keyring.fingerprints.join(',')}${identity(r.signedIdentity)}`;
    case 'sigstoreSigned': {
      const id = (k: crypto.KeyObject) => `sha256:${crypto.createHash('sha256').update(k.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16)}`;
      const signers = r.fulcio ? `fulcio ${r.fulcio.subjectEmail} from ${r.fulcio.oidcIssuer}` : `keys ${r.keys.map(id).join(',')}`;
      const rekor = r.rekorKeys.length ? ` rekor ${r.rekorKeys.map(id).join(',')}` : '';
      return `sigstoreSigned ${signers}${rekor}${identity(r.signedIdentity)}`;
    }
    default:
      return r.type;
  }
}

function lines(policy: TrustPolicy): string[] {
  const out = [`#   default: ${policy.default.map(requirement).join(' AND ')}`];
  for (const [scope, reqs] of policy.docker) out.push(`#   docker ${JSON.stringify(scope)}: ${reqs.map(requirement).join(' AND ')}`);
  return out;
}

async function describeFile(file: string): Promise<string[]> {
  try {
    return lines(await parsePolicy(await fs.readFile(file, 'utf8'), file));
  } catch (err) {
    throw new FailedPreconditionError(`the trust policy ${file} cannot be applied: ${(err as Error).message}`);
  }
}

/** Commented lines for `berthd config`; rejects when a policy file cannot be applied. */
export async function describeTrust(trust: BerthConfig['image']['trust']): Promise<string> {
  const out = ['', '# The image trust policy in force (image.trust):'];
  if (!trust.policy) out.push('#   none: every image is accepted unverified');
  else out.push(`# ${trust.policy}`, ...(await describeFile(trust.policy)));
  if (trust.namespace_policy_dir) {
    const names = await fs.readdir(trust.namespace_policy_dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const file = path.join(trust.namespace_policy_dir, name);
      out.push(`# namespace ${name.slice(0, -'.json'.length)}: ${file}`, ...(await describeFile(file)));
    }
  }
  return `${out.join('\n')}\n`;
}
