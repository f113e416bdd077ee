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

/** Neither feature is built yet; berth reports what it does, not what it hopes to. */
export const HANDLER_FEATURES: HandlerFeatures = { recursiveReadOnlyMounts: false, userNamespaces: false };

export function listHandlers(config: BerthConfig): RuntimeHandlerInfo[] {
  const { default_handler, handlers } = config.runtime;
  const named = Object.entries(handlers).map(([name, h]) => ({ name, runtimePath: h.runtime_path }));
  return [{ name: '', runtimePath: handlers[default_handler].runtime_path }, ...named];
}
