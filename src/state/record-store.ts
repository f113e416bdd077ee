// Records of pods and containers on disk (one JSON file each, written atomically) and in memory, with
// the name reservations that make their kubelet-style names unique.
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from './atomic-file';

export interface NamedRecord {
  /** 64 hex digits. */
  id: string;
  /** The unique name, e.g. k8s_POD_<name>_<namespace>_<uid>_<attempt>. */
  fullName: string;
}

export class RecordStore<R extends NamedRecord> {
  private readonly byId = new Map<string, R>();
  private readonly byName = new Map<string, string>();

  constructor(readonly dir: string) {}

  async load(): Promise<R[]> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await fs.readdir(this.dir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(name)) continue;
      const record = JSON.parse(await fs.readFile(path.join(this.dir, name), 'utf8')) as R;
      this.byId.set(record.id, record);
      this.byName.set(record.fullName, record.id);
    }
    return this.list();
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
    this.byId.set(record.id, record);
    this.byName.set(record.fullName, record.id);
  }

  async delete(record: R): Promise<void> {
    await fs.rm(path.join(this.dir, `${record.id}.json`), { force: true });
    this.byId.delete(record.id);
    this.release(record.fullName, record.id);
  }
}
