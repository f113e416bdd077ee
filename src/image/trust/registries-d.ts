// registries.d(5): where a registry's signatures are. Every *.yaml file of the directory, with
// "default-docker" and "docker.<scope>" sections holding `lookaside` (or the older `sigstore`), the base
// URL of simple-signing signatures, and `use-sigstore-attachments`, whether cosign signatures are read
// from the registry. Each setting comes from the most specific scope that sets it, then default-docker.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ImageReference } from '../reference';
import { mostSpecific } from './scopes';

interface Section {
  lookaside?: string;
  useSigstoreAttachments?: boolean;
}

export interface RegistriesD {
  defaultDocker: Section;
  docker: Map<string, Section>;
}

export interface SignatureSources {
  /** Base URL of the lookaside signatures (file://, http://, https://). */
  lookaside: string;
  useSigstoreAttachments: boolean;
}

/** Where containers/image looks without any configuration (as root). */
const DEFAULT_LOOKASIDE = 'file:///var/lib/containers/sigstore';
const SECTION_KEYS = ['lookaside', 'lookaside-staging', 'sigstore', 'sigstore-staging', 'use-sigstore-attachments'];

function section(value: unknown, where: string): Section {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where} is not a mapping`);
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (!SECTION_KEYS.includes(k)) throw new Error(`${where}: unknown key ${JSON.stringify(k)}`);
  const url = obj.lookaside ?? obj.sigstore;
  if (url !== undefined && (typeof url !== 'string' || !/^(file|https?):\/\//.test(url))) throw new Error(`${where}: lookaside ${JSON.stringify(url)} is not a file://, http:// or https:// URL`);
  const attachments = obj['use-sigstore-attachments'];
  if (attachments !== undefined && typeof attachments !== 'boolean') throw new Error(`${where}: use-sigstore-attachments is not a boolean`);
  return { ...(url ? { lookaside: url as string } : {}), ...(attachments !== undefined ? { useSigstoreAttachments: attachments } : {}) };
}

/** Reads the directory (none there: nothing configured). A scope defined twice is an error. */
export async function loadRegistriesD(dir: string): Promise<RegistriesD> {
  const config: RegistriesD = { defaultDocker: {}, docker: new Map() };
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return config;
    throw err;
  }
  const seen = new Map<string, string>();
  for (const name of names) {
    const file = path.join(dir, name);
    const doc = (parseYaml(await fs.readFile(file, 'utf8')) ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(doc)) if (k !== 'default-docker' && k !== 'docker') throw new Error(`${file}: unknown key ${JSON.stringify(k)}`);
    const claim = (scope: string) => {
      const other = seen.get(scope);
      if (other) throw new Error(`${scope === 'default-docker' ? '"default-docker"' : `"docker" namespace ${JSON.stringify(scope)}`} defined both in ${other} and ${file}`);
      seen.set(scope, file);
    };
    if (doc['default-docker'] !== undefined) {
      claim('default-docker');
      config.defaultDocker = section(doc['default-docker'], `${file}: default-docker`);
    }
    for (const [scope, value] of Object.entries((doc.docker ?? {}) as Record<string, unknown>)) {
      claim(scope);
      config.docker.set(scope, section(value, `${file}: docker.${scope}`));
    }
  }
  return config;
}

/** The lookaside and attachments settings for an image: each from the most specific scope that sets it. */
export function signatureSources(config: RegistriesD, ref: ImageReference): SignatureSources {
  const lookaside = mostSpecific(ref, (s) => config.docker.get(s)?.lookaside)?.value ?? config.defaultDocker.lookaside ?? DEFAULT_LOOKASIDE;
  const attachments = mostSpecific(ref, (s) => config.docker.get(s)?.useSigstoreAttachments)?.value ?? config.defaultDocker.useSigstoreAttachments ?? false;
  return { lookaside, useSigstoreAttachments: attachments };
}
