// The scopes an image reference falls in, most specific first, as containers-policy.json(5) and
// registries.d(5) match them for the docker transport: the exact reference, the repository, each parent
// namespace, the registry host, then wildcards over the host's domain (without its port).
import { formatReference, repositoryName, type ImageReference } from '../reference';

export function scopesOf(ref: ImageReference): string[] {
  const scopes = [formatReference(ref)];
  const parts = repositoryName(ref).split('/');
  for (let n = parts.length; n >= 1; n--) scopes.push(parts.slice(0, n).join('/'));
  const host = ref.registry.replace(/:\d+$/, '');
  const labels = host.split('.');
  for (let i = 1; i < labels.length; i++) scopes.push(`*.${labels.slice(i).join('.')}`);
  return scopes;
}

/** The first scope of `ref` that `has` holds, or undefined. */
export function mostSpecific<T>(ref: ImageReference, has: (scope: string) => T | undefined): { scope: string; value: T } | undefined {
  for (const scope of scopesOf(ref)) {
    const value = has(scope);
    if (value !== undefined) return { scope, value };
  }
  return undefined;
}
