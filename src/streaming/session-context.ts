// What every protocol handler gets from the server, and what it gives back for the server to track.
import type { Logger } from 'pino';
import type { StreamingBackend } from './backend';

export interface SessionContext {
  backend: StreamingBackend;
  /** A connection with no traffic for this long is closed (kubelet: 4 hours). */
  idleTimeoutMs: number;
  /** How long a SPDY client has to open the streams it needs (kubelet: 30 seconds). */
  streamCreationTimeoutMs: number;
  log: Logger;
}

/** An upgraded connection in progress. */
export interface ActiveSession {
  /** Ends the session now: the backend's signal aborts and the connection is closed. */
  close(): Promise<void>;
  /** Settles when the connection is gone. */
  readonly done: Promise<void>;
}

/** Resolves true when promise settles first, false after ms (or never, for ms = 0). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    if (ms > 0) timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
