// Sandbox records on disk (written atomically) and in memory, with the name reservations that make
// sandbox names unique.
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from '../state/atomic-file';
import type { SandboxRecord } from './sandbox';

export class SandboxStore {
  private readonly byId = new Map<string, SandboxRecord>();
  private readonly byName = new Map<string, string>();

  constructor(readonly dir: string) {}

  async load(): Promise<SandboxRecord[]> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await fs.readdir(this.dir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(name)) continue;
      const record = JSON.parse(await fs.readFile(path.join(this.dir, name), 'utf8')) as SandboxRecord;
      this.byId.set(record.id, record);
      this.byName.set(record.fullName, record.id);
    }
    return this.list();
  }

  list(): SandboxRecord[] {
    return [...this.byId.values()];
  }

  get(id: string): SandboxRecord | undefined {
    return this.byId.get(id);
  }

  /** Full IDs, or a unique prefix of one (as crictl accepts). */
  resolve(idOrPrefix: string): SandboxRecord | undefined {
    const exact = this.byId.get(idOrPrefix);
    if (exact || idOrPrefix.length === 0) return exact;
    const matches = [...this.byId.keys()].filter((id) => id.startsWith(idOrPrefix));
    return matches.length === 1 ? this.byId.get(matches[0]) : undefined;
  }

  ownerOf(fullName: string): string | undefined {
    return this.byName.get(fullName);
  }

  /** Claims a name for an id before the sandbox exists; false when another sandbox has it. */
  reserve(fullName: string, id: string): boolean {
    const owner = this.byName.get(fullName);
    if (owner && owner !== id) return false;
    this.byName.set(fullName, id);
    return true;
  }

  release(fullName: string, id: string): void {
    if (this.byName.get(fullName) === id) this.byName.delete(fullName);
  }

  async save(record: SandboxRecord): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, `${record.id}.json`), record);
    this.byId.set(record.id, record);
    this.byName.set(record.fullName, record.id);
  }

  async delete(record: SandboxRecord): Promise<void> {
    await fs.rm(path.join(this.dir, `${record.id}.json`), { force: true });
    this.byId.delete(record.id);
    this.release(record.fullName, record.id);
  }
}
