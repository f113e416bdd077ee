// The format of berth's persistent state (<root>): its version in <root>/state-format, so that a berth
// reads what an older one wrote (migrated forward, a step per version, each step written down before the
// next) and refuses what a newer one wrote (a downgrade past a format change) with a clear message rather
// than misreading it. State from before the file existed is format 1.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { FailedPreconditionError } from '../errors';
import { writeFileAtomic } from './atomic-file';

/** The format this berth writes. */
export const STATE_FORMAT = 1;

/** Migration from format N to N + 1, by N. None yet: format 1 is the first. */
const MIGRATIONS: Record<number, (root: string, log: Logger) => Promise<void>> = {};

interface FormatFile {
  format: number;
  /** "berth <version>" that last wrote the file. */
  writtenBy: string;
}

const formatFile = (root: string) => path.join(root, 'state-format');

async function readFormat(root: string): Promise<FormatFile | undefined> {
  let text: string;
  try {
    text = await fs.readFile(formatFile(root), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: Partial<FormatFile> | undefined;
  try {
    parsed = JSON.parse(text) as Partial<FormatFile>;
  } catch {
    parsed = undefined;
  }
  if (!parsed || !Number.isInteger(parsed.format) || (parsed.format as number) < 1) {
    throw new FailedPreconditionError(`${formatFile(root)} does not hold a state format: ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  return { format: parsed.format as number, writtenBy: parsed.writtenBy ?? 'an unknown berth' };
}

/** Checks (and if older, migrates) the state in `root` before anything reads it. */
export async function openStateFormat(root: string, version: string, log: Logger): Promise<void> {
  const found = await readFormat(root);
  let format = found?.format ?? 1;
  if (format > STATE_FORMAT) {
    throw new FailedPreconditionError(
      `the state in ${root} has format ${format}, written by ${found?.writtenBy}; this berth (${version}) reads formats up to ${STATE_FORMAT}: ` +
        'run a berth at least as new as the one that wrote it',
    );
  }
  const write = (f: number) => writeFileAtomic(formatFile(root), `${JSON.stringify({ format: f, writtenBy: `berth ${version}` })}\n`, 0o644);
  while (format < STATE_FORMAT) {
    log.warn({ root, from: format, to: format + 1 }, 'migrating berth state');
    await MIGRATIONS[format](root, log);
    format++;
    await write(format);
  }
  if (found?.format !== STATE_FORMAT) await write(STATE_FORMAT);
}
