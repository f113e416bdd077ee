// Directories and a full disk. Node's recursive fs.promises.mkdir reports ENOENT when making a
// component fails for another reason (ENOSPC, EDQUOT, EROFS: nodejs/node#42808 was fixed for
// mkdirSync only, #47098 is open), so a full disk would read as a missing directory; makeDirs makes one
// component at a time and fails with the real error.
import fs from 'node:fs/promises';
import path from 'node:path';

export { isNoSpace } from '../errors';

/** `mkdir -p` (each new component with `mode`); an existing directory is fine. */
export async function makeDirs(dir: string, mode: number): Promise<void> {
  try {
    await fs.mkdir(dir, { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await fs.stat(dir).catch(() => undefined))?.isDirectory()) return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    await makeDirs(parent, mode);
  }
  try {
    await fs.mkdir(dir, { mode });
  } catch (err) {
    // Made meanwhile by someone else: as good.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await fs.stat(dir).catch(() => undefined))?.isDirectory()) throw err;
  }
}
