// Preparing the unix socket berthd listens on: parent directory, stale sockets, permissions.
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

export const SOCKET_MODE = 0o660;

/** True when something accepts connections on the socket path. */
function isServing(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socketPath);
    const finish = (serving: boolean) => {
      conn.destroy();
      resolve(serving);
    };
    conn.setTimeout(1000, () => finish(true));
    conn.once('connect', () => finish(true));
    conn.once('error', () => finish(false));
  });
}

/**
 * Creates the socket's directory and removes a stale socket left by a berthd that died.
 * Refuses to touch a path that is not a socket, or a socket another process still serves.
 */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o711 });
  let stat;
  try {
    stat = await fs.lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) throw new Error(`${socketPath} exists and is not a socket: refusing to replace it`);
  if (await isServing(socketPath)) throw new Error(`another process is already serving on ${socketPath}`);
  await fs.unlink(socketPath);
}

/** Removes our socket at shutdown; a socket already gone is fine. */
export async function removeSocket(socketPath: string): Promise<void> {
  await fs.rm(socketPath, { force: true });
}
