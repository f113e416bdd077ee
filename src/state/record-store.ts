// Records of pods and containers on disk (one JSON file each, written atomically) and in memory, with
// the name reservations that make their kubelet-style names unique.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, removeTempFiles, writeJsonAtomic } from './atomic-file';

export interface NamedRecord {
  /** 64 hex digits. */
  id: string;
  /** The unique name, e.g. k8s_POD_<name>_<namespace>_<uid>_<attempt>. */
  fullName: string;
}

/** Told of each record written or deleted after it is done: the record as it was (if any) and as it is now. */
export type RecordChange<R> = (before: R | undefined, after: R | undefined) => void;

export class RecordStore<R extends NamedRecord> {
  private readonly byId = new Map<string, R>();
  private readonly byName = new Map<string, string>();

  constructor(
    readonly dir: string,
    private readonly onChange?: RecordChange<R>,
  ) {}

  /**
   * Loads every record. A record that does not parse (a torn or corrupt file: a disk fault, an edit by
   * hand) is moved to `quarantine/` beside the records and reported through `onQuarantine`, never a
   * crash loop; temp files of writes a crash cut short are removed.
   */
  async load(onQuarantine?: (file: string, reason: string) => void): Promise<R[]> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await removeTempFiles(this.dir);
    for (const name of await fs.readdir(this.dir)) {
      const match = /^([a-f0-9]{64})\.json$/.exec(name);
      if (!match) continue;
      const file = path.join(this.dir, name);
      let record: R;
      try {
        record = JSON.parse(await fs.readFile(file, 'utf8')) as R;
        if (record?.id !== match[1] || typeof record.fullName !== 'string') throw new Error('its id or name is missing or not its file name');
      } catch (err) {
        const moved = await this.quarantine(file);
        onQuarantine?.(moved, (err as Error).message);
        continue;
      }
      this.byId.set(record.id, record);
      this.byName.set(record.fullName, record.id);
    }
    return this.list();
  }

  private async quarantine(file: string): Promise<string> {
    const dir = path.join(this.dir, 'quarantine');
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const moved = path.join(dir, `${path.basename(file)}.${Date.now()}`);
    await fs.rename(file, moved);
    await fsyncDir(this.dir);
    return moved;
  }

  list(): R[] {
    return [...this.byId.values()];
  }

  get(id: string): R | undefined {
    return this.byId.get(id);
  }

  /** Full IDs, or a unique prefix of one (as crictl accepts). */
  resolve(idOrPrefix: string): R | undefined {
    const exact = this.byId.get(idOrPrefix);
    if (exact || idOrPrefix.length === 0) return exact;
    const matches = [...this.byId.keys()].filter((id) => id.startsWith(idOrPrefix));
    return matches.length === 1 ? this.byId.get(matches[0]) : undefined;
  }

  ownerOf(fullName: string): string | undefined {
    return this.byName.get(fullName);
  }

  /** Claims a name for an id before the record exists; false when another record has it. */
  reserve(fullName: string, id: string): boolean {
    const owner = this.byName.get(fullName);
    if (owner && owner !== id) return false;
    this.byName.set(fullName, id);
    return true;
  }

  release(fullName: string, id: string): void {
    if (this.byName.get(fullName) === id) this.byName.delete(fullName);
  }

  async save(record: R): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, `${record.id}.json`), record);
    const before = this.byId.get(record.id);
    this.byId.set(record.id, record);
    this.byName.set(record.fullName, record.id);
    this.onChange?.(before, record);
  }

  async delete(record: R): Promise<void> {
    await fs.rm(path.join(this.dir, `${record.id}.json`), { force: true });
    const before = this.byId.get(record.id);
    this.byId.delete(record.id);
    this.release(record.fullName, record.id);
    if (before) this.onChange?.(before, undefined);
  }
}
