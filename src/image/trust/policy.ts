// containers-policy.json(5), as CRI-O, podman and skopeo read it, for the docker transport: "default"
// and "transports.docker.<scope>", each a list of requirements that must all hold. Read strictly (an
// unknown key, type or field is an error, as containers/image has it), with every key file read and
// parsed when the policy is: a policy berth cannot apply refuses pulls, it is never half applied.
import crypto, { type KeyObject, type X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { readKeyring, type Keyring } from './gpg';
import type { SignedIdentity } from './identity';
import { pemCertificates, type FulcioTrust, type SigstoreTrust } from './sigstore';
import { parseReference } from '../reference';

export type Requirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | { type: 'signedBy'; keyring: Keyring; signedIdentity: SignedIdentity }
  | ({ type: 'sigstoreSigned'; signedIdentity: SignedIdentity } & SigstoreTrust);

export interface TrustPolicy {
  /** The file it was read from. */
  file: string;
  default: Requirement[];
  /** transports.docker, by scope ("" is the transport's default). */
  docker: Map<string, Requirement[]>;
}

/** A policy file that cannot be applied: the reason is the message. */
export class PolicyError extends Error {}

type Json = Record<string, unknown>;

function object(value: unknown, where: string, allowed: readonly string[]): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PolicyError(`${where} is not a JSON object`);
  for (const k of Object.keys(value)) if (!allowed.includes(k)) throw new PolicyError(`${where}: unknown key ${JSON.stringify(k)}`);
  return value as Json;
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') throw new PolicyError(`${where} must be a non-empty string`);
  return value;
}

/** Exactly one of the given keys: its name and value. */
function oneOf(obj: Json, where: string, keys: readonly string[]): [string, unknown] {
  const present = keys.filter((k) => obj[k] !== undefined);
  if (present.length !== 1) throw new PolicyError(`${where} needs exactly one of ${keys.join(', ')}${present.length ? ` (has ${present.join(', ')})` : ''}`);
  return [present[0], obj[present[0]]];
}

async function readKeyFile(file: string, where: string): Promise<Buffer> {
  if (!path.isAbsolute(file)) throw new PolicyError(`${where}: key path ${JSON.stringify(file)} is not absolute`);
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new PolicyError(`${where}: reading ${file}: ${(err as Error).message}`);
  }
}

function base64(value: unknown, where: string): Buffer {
  const text = string(value, where);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new PolicyError(`${where} is not base64`);
  return Buffer.from(text, 'base64');
}

/**
 * The bytes a key field names, by the field's kind: a file (…Path), base64 data (…Data), or a non-empty
 * list of either (…Paths, …Datas).
 */
async function keySource(key: string, value: unknown, where: string): Promise<Buffer[]> {
  const field = `${where}.${key}`;
  const one = (v: unknown, at: string) => (/Paths?$/.test(key) ? readKeyFile(string(v, at), where) : Promise.resolve(base64(v, at)));
  if (!/s$/.test(key)) return [await one(value, field)];
  if (!Array.isArray(value) || value.length === 0) throw new PolicyError(`${field} must be a non-empty list`);
  return Promise.all(value.map((v, i) => one(v, `${field}[${i}]`)));
}

/** Whether a remapIdentity prefix is a host[:port] or a name under one. */
function validPrefix(prefix: string): boolean {
  try {
    const host = prefix.split('/')[0];
    if (!host.includes('.') && !host.includes(':') && host !== 'localhost') return false;
    parseReference(prefix.includes('/') ? prefix : `${prefix}/x`);
    return true;
  } catch {
    return false;
  }
}

function parseIdentity(value: unknown, where: string): SignedIdentity {
  if (value === undefined) return { type: 'matchRepoDigestOrExact' };
  const base = object(value, where, ['type', 'dockerReference', 'dockerRepository', 'prefix', 'signedPrefix']);
  const type = string(base.type, `${where}.type`);
  switch (type) {
    case 'matchRepoDigestOrExact':
    case 'matchExact':
    case 'matchRepository':
      object(value, where, ['type']);
      return { type };
    case 'exactReference': {
      object(value, where, ['type', 'dockerReference']);
      const ref = string(base.dockerReference, `${where}.dockerReference`);
      const last = ref.slice(ref.lastIndexOf('/') + 1);
      if (!last.includes(':') && !last.includes('@')) throw new PolicyError(`${where}.dockerReference ${JSON.stringify(ref)} has neither a tag nor a digest`);
      parseRef(ref, where);
      return { type, dockerReference: ref };
    }
    case 'exactRepository': {
      object(value, where, ['type', 'dockerRepository']);
      const repo = string(base.dockerRepository, `${where}.dockerRepository`);
      parseRef(repo, where);
      return { type, dockerRepository: repo };
    }
    case 'remapIdentity': {
      object(value, where, ['type', 'prefix', 'signedPrefix']);
      const prefix = string(base.prefix, `${where}.prefix`);
      const signedPrefix = string(base.signedPrefix, `${where}.signedPrefix`);
      for (const p of [prefix, signedPrefix]) if (!validPrefix(p)) throw new PolicyError(`${where}: ${JSON.stringify(p)} is not a registry host or a repository under one`);
      return { type, prefix, signedPrefix };
    }
    default:
      throw new PolicyError(`${where}: unknown signedIdentity type ${JSON.stringify(type)}`);
  }
}

function parseRef(text: string, where: string): void {
  try {
    parseReference(text);
  } catch (err) {
    throw new PolicyError(`${where}: ${(err as Error).message}`);
  }
}

async function parseSignedBy(obj: Json, where: string): Promise<Requirement> {
  object(obj, where, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity']);
  if (obj.keyType !== 'GPGKeys') throw new PolicyError(`${where}: keyType ${JSON.stringify(obj.keyType ?? '')} is not supported (only "GPGKeys")`);
  const [key, value] = oneOf(obj, where, ['keyPath', 'keyPaths', 'keyData']);
  const blobs = await keySource(key, value, where);
  let keyring: Keyring;
  try {
    keyring = await readKeyring(blobs);
  } catch (err) {
    throw new PolicyError(`${where}: the GPG keys do not parse: ${(err as Error).message}`);
  }
  return { type: 'signedBy', keyring, signedIdentity: parseIdentity(obj.signedIdentity, `${where}.signedIdentity`) };
}

/** At most one of the key fields: its bytes, or undefined when none is given. */
async function optionalKeySource(obj: Json, where: string, keys: readonly string[]): Promise<Buffer[] | undefined> {
  const present = keys.filter((k) => obj[k] !== undefined);
  if (present.length === 0) return undefined;
  if (present.length > 1) throw new PolicyError(`${where}: at most one of ${keys.join(', ')} (has ${present.join(', ')})`);
  return keySource(present[0], obj[present[0]], where);
}

function publicKeys(pems: Buffer[], where: string, what: string): KeyObject[] {
  return pems.map((pem, i) => {
    try {
      return crypto.createPublicKey(pem);
    } catch (err) {
      throw new PolicyError(`${where}: ${what} ${i + 1} is not a PEM public key: ${(err as Error).message}`);
    }
  });
}

/** fulcio: {caPath | caData, oidcIssuer, subjectEmail}: the CA's certificates, read now. */
async function parseFulcio(value: unknown, where: string): Promise<FulcioTrust> {
  const obj = object(value, where, ['caPath', 'caData', 'oidcIssuer', 'subjectEmail']);
  const [key, ca] = oneOf(obj, where, ['caPath', 'caData']);
  const [pem] = await keySource(key, ca, where);
  let roots: X509Certificate[];
  try {
    roots = pemCertificates(pem.toString('utf8'));
  } catch (err) {
    throw new PolicyError(`${where}: a CA certificate does not parse: ${(err as Error).message}`);
  }
  if (roots.length === 0) throw new PolicyError(`${where}: the CA holds no PEM certificate`);
  return { roots, oidcIssuer: string(obj.oidcIssuer, `${where}.oidcIssuer`), subjectEmail: string(obj.subjectEmail, `${where}.subjectEmail`) };
}

async function parseSigstoreSigned(obj: Json, where: string): Promise<Requirement> {
  if (obj.pki !== undefined) throw new PolicyError(`${where}: pki (certificates of a private CA without Fulcio) is not supported by berth: use public keys or fulcio`);
  object(obj, where, ['type', 'keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', 'rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas', 'signedIdentity']);
  const keyPems = await optionalKeySource(obj, where, ['keyPath', 'keyData', 'keyPaths', 'keyDatas']);
  if ((keyPems === undefined) === (obj.fulcio === undefined)) throw new PolicyError(`${where} needs exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio`);
  const rekorPems = await optionalKeySource(obj, where, ['rekorPublicKeyPath', 'rekorPublicKeyData', 'rekorPublicKeyPaths', 'rekorPublicKeyDatas']);
  const fulcio = obj.fulcio === undefined ? undefined : await parseFulcio(obj.fulcio, `${where}.fulcio`);
  if (fulcio && !rekorPems) throw new PolicyError(`${where}: fulcio needs Rekor's public key (rekorPublicKeyPath or rekorPublicKeyData): a certificate is only checked at the time Rekor logged it`);
  return {
    type: 'sigstoreSigned',
    keys: keyPems ? publicKeys(keyPems, where, 'public key') : [],
    ...(fulcio ? { fulcio } : {}),
    rekorKeys: rekorPems ? publicKeys(rekorPems, where, 'Rekor public key') : [],
    signedIdentity: parseIdentity(obj.signedIdentity, `${where}.signedIdentity`),
  };
}

async function parseRequirement(value: unknown, where: string): Promise<Requirement> {
  const base = object(value, where, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'keyDatas', 'signedIdentity', 'fulcio', 'pki', 'rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas']);
  const type = string(base.type, `${where}.type`);
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject':
      object(value, where, ['type']);
      return { type };
    case 'signedBy':
      return parseSignedBy(base, where);
    case 'sigstoreSigned':
      return parseSigstoreSigned(base, where);
    default:
      throw new PolicyError(`${where}: unknown requirement type ${JSON.stringify(type)}`);
  }
}

async function parseRequirements(value: unknown, where: string): Promise<Requirement[]> {
  if (!Array.isArray(value) || value.length === 0) throw new PolicyError(`${where}: the list of requirements must not be empty`);
  return Promise.all(value.map((r, i) => parseRequirement(r, `${where}[${i}]`)));
}

export async function parsePolicy(text: string, file: string): Promise<TrustPolicy> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PolicyError(`${file} is not JSON: ${(err as Error).message}`);
  }
  const top = object(doc, file, ['default', 'transports']);
  if (top.default === undefined) throw new PolicyError(`${file}: the default policy is missing`);
  const policy: TrustPolicy = { file, default: await parseRequirements(top.default, 'default'), docker: new Map() };
  if (top.transports === undefined) return policy;
  const transports = object(top.transports, 'transports', Object.keys((top.transports ?? {}) as object));
  for (const [name, scopes] of Object.entries(transports)) {
    const entries = object(scopes, `transports.${name}`, Object.keys((scopes ?? {}) as object));
    // Only the docker transport reaches berth; the others' scopes are read and checked all the same.
    for (const [scope, reqs] of Object.entries(entries)) {
      const parsed = await parseRequirements(reqs, `transports.${name}.${JSON.stringify(scope)}`);
      if (name === 'docker') policy.docker.set(scope, parsed);
    }
  }
  return policy;
}
