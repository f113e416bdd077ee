// Crash-safe writes: a reader sees the old record or the new one, never half of either.
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileSynced } from '../native';

/** fsyncs a directory so that a rename or unlink inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const TEMP = /^\..+\.[0-9a-f]{12}\.tmp$/;

/**
 * Removes the temp files that writes cut short by a crash left in `dir` (a write's temp file is renamed
 * away when it completes); returns their names. Run at start-up, before anything writes there.
 */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => TEMP.test(n));
  for (const name of names) await fs.rm(path.join(dir, name), { force: true });
  return names;
}

/**
 * Writes data to a temp file beside `file`, fsyncs it, renames it over `file`, fsyncs the directory: one
 * thread-pool job (the temp file is removed if any step fails).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFileSynced(temp, data, mode, file);
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}
