// The OCI runtime handlers configured in berth.toml, as the CRI's RuntimeClass handlers see them.
import type { BerthConfig } from '../config/schema';

export interface HandlerFeatures {
  recursiveReadOnlyMounts: boolean;
  userNamespaces: boolean;
}

export interface RuntimeHandlerInfo {
  /** "" stands for the default handler, as kubelet sends it when a pod names no RuntimeClass. */
  name: string;
  runtimePath: string;
}

/**
 * What a handler's runtime can do, as berth reports it (never what it hopes to): recursive read-only
 * mounts with berth's own runtime (mount_setattr with AT_RECURSIVE); Debian's runc 1.1 has no "rro".
 * User namespaces (a pod's own, joined by path, with idmapped mounts): berth's own runtime; runc 1.1
 * cannot idmap mounts.
 */
export function handlerFeatures(runtimePath: string): HandlerFeatures {
  const builtin = runtimePath === 'builtin';
  return { recursiveReadOnlyMounts: builtin, userNamespaces: builtin };
}

export function listHandlers(config: BerthConfig): RuntimeHandlerInfo[] {
  const { default_handler, handlers } = config.runtime;
  const named = Object.entries(handlers).map(([name, h]) => ({ name, runtimePath: h.runtime_path }));
  return [{ name: '', runtimePath: handlers[default_handler].runtime_path }, ...named];
}
