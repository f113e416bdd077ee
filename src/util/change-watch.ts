// Whether some directories may have changed since a caller last looked: an inotify watch on each sets the
// flag, so that a cache in front of them costs no syscall while nothing happens. inotify is not recursive:
// only entries made, renamed or removed directly in a directory count. A watch that cannot be set up, or
// fails later, makes every call answer "changed" (the caller looks every time, as without a watch).
import { watch, type FSWatcher } from 'node:fs';

export class ChangeWatch {
  private changed = true;
  private broken = false;
  private readonly watchers: FSWatcher[] = [];

  constructor(dirs: readonly string[]) {
    for (const dir of dirs) {
      try {
        // Not persistent: the watch never keeps berthd (or a test) alive.
        const w = watch(dir, { persistent: false }, () => (this.changed = true));
        w.on('error', () => (this.broken = true));
        this.watchers.push(w);
      } catch {
        this.broken = true;
      }
    }
  }

  /** Whether a directory changed since the last call (true the first time); the flag is reset. */
  take(): boolean {
    if (this.broken) return true;
    const changed = this.changed;
    this.changed = false;
    return changed;
  }

  close(): void {
    for (const w of this.watchers) w.close();
  }
}
