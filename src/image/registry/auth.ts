// Registry authentication: the WWW-Authenticate challenge, bearer tokens (cached until they expire),
// basic auth, and credentials from the CRI AuthConfig or a Docker-style auth file. Secrets are never logged.
import fs from 'node:fs';
import { UnauthenticatedError } from '../../errors';

export interface Credentials {
  username?: string;
  password?: string;
  /** base64 of "username:password" */
  auth?: string;
  identityToken?: string;
  /** A bearer token to send as it is. */
  registryToken?: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="...",service="...",scope="..."` (quoted or bare values). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2])) !== null) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme: m[1].toLowerCase(), params };
}

/** username and password from either form of the credentials. */
export function userPassword(creds: Credentials | undefined): { username: string; password: string } | undefined {
  if (!creds) return undefined;
  if (creds.username !== undefined || creds.password !== undefined) return { username: creds.username ?? '', password: creds.password ?? '' };
  if (creds.auth) {
    const decoded = Buffer.from(creds.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i === -1) throw new UnauthenticatedError('registry auth: the "auth" field is not base64 of user:password');
    return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  return undefined;
}

export function basicHeader(creds: Credentials | undefined): string | undefined {
  const up = userPassword(creds);
  return up ? `Basic ${Buffer.from(`${up.username}:${up.password}`).toString('base64')}` : undefined;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }>;
}

const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io'];

/** Credentials for a registry from a Docker config.json-style file; undefined when it has none. */
export function credentialsFromFile(file: string, registry: string): Credentials | undefined {
  if (!file) return undefined;
  let doc: AuthFile;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8')) as AuthFile;
  } catch {
    return undefined;
  }
  const auths = doc.auths ?? {};
  const keys = [registry, `https://${registry}`, `http://${registry}`, ...(registry === 'docker.io' ? HUB_KEYS : [])];
  for (const key of keys) {
    const entry = auths[key] ?? auths[`${key}/`];
    if (entry) {
      return {
        auth: entry.auth,
        username: entry.username,
        password: entry.password,
        identityToken: entry.identitytoken,
        registryToken: entry.registrytoken,
      };
    }
  }
  return undefined;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Bearer tokens by realm, service and scope; reused until shortly before they expire. */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();

  get(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (!t) return undefined;
    if (Date.now() >= t.expiresAt) {
      this.tokens.delete(key);
      return undefined;
    }
    return t.token;
  }

  set(key: string, token: string, expiresInSeconds: number | undefined): void {
    const lifetime = Math.max(30, (expiresInSeconds ?? 60) - 10) * 1000;
    this.tokens.set(key, { token, expiresAt: Date.now() + lifetime });
  }
}
