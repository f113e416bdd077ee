// Image references as the kubelet and crictl send them, normalised the way Docker and containerd do:
// `busybox` → `docker.io/library/busybox:latest`. Grammar after the distribution reference package.
import { InvalidArgumentError } from '../errors';

export interface ImageReference {
  /** Registry host, with port if any: `docker.io`, `127.0.0.1:5000`, `localhost`. */
  registry: string;
  /** Path inside the registry: `library/busybox`. */
  repository: string;
  tag?: string;
  /** `sha256:<64 hex>`; when present, pulls go by digest. */
  digest?: string;
}

export const DEFAULT_REGISTRY = 'docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const DEFAULT_TAG = 'latest';

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const MAX_NAME = 255;

function invalid(input: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image reference ${JSON.stringify(input)}: ${why}`);
}

/** The first component names a registry when it looks like a host: it has a `.` or `:`, or is localhost. */
function isRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component.startsWith('[');
}

export function parseReference(input: string): ImageReference {
  if (input === '') throw invalid(input, 'empty');
  if (/\s/.test(input)) throw invalid(input, 'contains white space');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(input, `digest ${JSON.stringify(digest)} is not sha256:<64 lowercase hex>`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, `tag ${JSON.stringify(tag)} is not valid`);
  }
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  if (parts.length > 1 && isRegistry(parts[0])) {
    registry = parts.shift() as string;
    if (!HOST.test(registry)) throw invalid(input, `registry ${JSON.stringify(registry)} is not a valid host`);
  }
  if (DOCKER_HUB_ALIASES.has(registry)) registry = DEFAULT_REGISTRY;
  for (const part of parts) {
    if (!COMPONENT.test(part)) {
      throw invalid(input, `path component ${JSON.stringify(part)} must be lowercase letters, digits and separators`);
    }
  }
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length + registry.length + 1 > MAX_NAME) throw invalid(input, `name longer than ${MAX_NAME} characters`);
  if (!tag && !digest) tag = DEFAULT_TAG;
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `registry/repository` */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical text: `registry/repository:tag`, `registry/repository@digest`, or both. */
export function formatReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** What a pull asks the registry for: the digest when there is one, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}
