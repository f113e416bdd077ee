// The host's processes, read from /proc: for waiting until a process runs (or is gone) by what its
// command line holds. Zombies have an empty cmdline, so only live processes match.
import fs from 'node:fs';

export function pidsWithCmdline(part: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(part)) pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
