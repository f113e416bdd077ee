// What the RPC handlers are given: configuration and the domain modules they translate onto.
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema';

export interface ServerDeps {
  config: BerthConfig;
  log: Logger;
  /** berth's own version (package.json). */
  version: string;
}
