// Reading /proc: which process serves a unix socket, the process table, and a process's memory.
// The parsers are pure (they take file text) so that they can be unit-tested; the readers are thin.
import fs from 'node:fs';
import path from 'node:path';

/** One line of /proc/net/unix. */
export interface UnixSocketEntry {
  /** Socket flags (hex in the file); 0x10000 is __SO_ACCEPTCON, set on a listening socket. */
  flags: number;
  /** SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_SEQPACKET = 5. */
  type: number;
  /** SS_UNCONNECTED = 1, SS_CONNECTING = 2, SS_CONNECTED = 3, SS_DISCONNECTING = 4. */
  state: number;
  inode: number;
  /** The bound path; abstract names start with '@'; '' for an unbound socket. */
  path: string;
}

export const SO_ACCEPTCON = 0x10000;

const NET_UNIX_LINE =
  /^\s*[0-9a-fA-F]+:\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s+(\d+)(?: (.*))?$/;

/** Parses the text of /proc/net/unix (header line included or not). Lines that do not parse are skipped. */
export function parseProcNetUnix(text: string): UnixSocketEntry[] {
  const entries: UnixSocketEntry[] = [];
  for (const line of text.split('\n')) {
    const m = NET_UNIX_LINE.exec(line);
    if (!m) continue;
    entries.push({
      flags: parseInt(m[3], 16),
      type: parseInt(m[4], 16),
      state: parseInt(m[5], 16),
      inode: Number(m[6]),
      path: m[7] ?? '',
    });
  }
  return entries;
}

/** The inodes of the listening sockets bound to any of `paths`. */
export function listeningInodes(entries: readonly UnixSocketEntry[], paths: readonly string[]): number[] {
  const wanted = new Set(paths);
  return entries.filter((e) => (e.flags & SO_ACCEPTCON) !== 0 && wanted.has(e.path)).map((e) => e.inode);
}

/** `socket:[123]` → 123; anything else → undefined. */
export function socketInodeOfLink(link: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** One process, as much of it as the benchmark needs. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  /** The command name (at most 15 characters, from /proc/PID/stat). */
  comm: string;
}

/** Parses /proc/PID/stat. The command name sits in parentheses and may itself contain ')' and spaces. */
export function parseProcStat(text: string): ProcInfo | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid)) return undefined;
  return { pid, ppid, comm: text.slice(open + 1, close) };
}

export interface ProcMemory {
  /** Resident set size now, in KiB. */
  rssKiB: number;
  /** Peak resident set size ("high water mark") over the process's life, in KiB. */
  hwmKiB: number;
}

/** Reads VmRSS and VmHWM out of /proc/PID/status; undefined for a kernel thread (which has neither). */
export function parseProcStatus(text: string): ProcMemory | undefined {
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(text);
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(text);
  if (!rss || !hwm) return undefined;
  return { rssKiB: Number(rss[1]), hwmKiB: Number(hwm[1]) };
}

/** /proc/PID/cmdline → argv. */
export function parseCmdline(raw: string): string[] {
  const args = raw.split('\0');
  if (args.length && args[args.length - 1] === '') args.pop();
  return args;
}

/**
 * The value of `-address X`, `--address X`, `-address=X` or `--address=X` in argv, if any: containerd's
 * shims carry the socket of the containerd that started them, which tells two containerds' shims apart.
 */
export function addressArg(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-address' || a === '--address') return argv[i + 1];
    const m = /^--?address=(.*)$/.exec(a);
    if (m) return m[1];
  }
  return undefined;
}

/** What marks a process as belonging to a runtime's containers. */
export interface RuntimeProcessRule {
  /** Matched against the command name (comm). */
  pattern: RegExp;
  /** The paths of the runtime's socket: a matched process that names another `-address` is not this runtime's. */
  socketPaths: readonly string[];
}

/**
 * The per-container processes of a runtime, from a process table: every descendant of the daemon, plus every
 * process whose command name matches the rule (and whose `-address`, if it has one, is this runtime's socket).
 * Processes below a matched process that do not match themselves are the containers' own processes, the
 * workload and not the runtime, and are left out. The daemon itself is not in the result.
 */
export function runtimeProcesses(
  table: readonly ProcInfo[],
  daemonPid: number | undefined,
  rule: RuntimeProcessRule,
  cmdlineOf: (pid: number) => string[] | undefined,
): number[] {
  const byPid = new Map(table.map((p) => [p.pid, p]));
  const matched = new Map<number, boolean>();
  const isMatched = (p: ProcInfo): boolean => {
    let m = matched.get(p.pid);
    if (m === undefined) {
      m = rule.pattern.test(p.comm);
      if (m) {
        const address = addressArg(cmdlineOf(p.pid) ?? []);
        if (address !== undefined && !rule.socketPaths.includes(address)) m = false;
      }
      matched.set(p.pid, m);
    }
    return m;
  };
  const chosen: number[] = [];
  for (const p of table) {
    if (p.pid === daemonPid) continue;
    if (isMatched(p)) {
      chosen.push(p.pid);
      continue;
    }
    // Walk up: below the daemon with no matched process in between → the runtime's own helper.
    let cur = byPid.get(p.ppid);
    let seen = 0;
    while (cur && seen++ < 4096) {
      if (cur.pid === daemonPid) {
        chosen.push(p.pid);
        break;
      }
      if (isMatched(cur)) break;
      cur = byPid.get(cur.ppid);
    }
  }
  return chosen.sort((a, b) => a - b);
}

/**
 * Of the processes holding a listening socket, the one that serves it: the topmost, i.e. one whose parent does
 * not hold it too (children that inherited the descriptor are not the server). Lowest PID on a tie.
 */
export function pickServer(holders: readonly ProcInfo[]): number | undefined {
  const pids = new Set(holders.map((h) => h.pid));
  const top = holders.filter((h) => !pids.has(h.ppid)).map((h) => h.pid);
  return (top.length ? top : holders.map((h) => h.pid)).sort((a, b) => a - b)[0];
}

// ---------------------------------------------------------------------------------------------------------
// Readers.

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function listPids(procRoot = '/proc'): number[] {
  return fs
    .readdirSync(procRoot)
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

export function readProcInfo(pid: number, procRoot = '/proc'): ProcInfo | undefined {
  const text = readText(`${procRoot}/${pid}/stat`);
  return text === undefined ? undefined : parseProcStat(text);
}

export function readProcTable(procRoot = '/proc'): ProcInfo[] {
  const table: ProcInfo[] = [];
  for (const pid of listPids(procRoot)) {
    const info = readProcInfo(pid, procRoot);
    if (info) table.push(info);
  }
  return table;
}

export function readMemory(pid: number, procRoot = '/proc'): ProcMemory | undefined {
  const text = readText(`${procRoot}/${pid}/status`);
  return text === undefined ? undefined : parseProcStatus(text);
}

export function readCmdline(pid: number, procRoot = '/proc'): string[] | undefined {
  const text = readText(`${procRoot}/${pid}/cmdline`);
  return text === undefined ? undefined : parseCmdline(text);
}

/** The path itself and, if its directory resolves elsewhere through symlinks (/var/run → /run), that path too. */
export function socketPathVariants(socketPath: string): string[] {
  const variants = [socketPath];
  try {
    const real = path.join(fs.realpathSync(path.dirname(socketPath)), path.basename(socketPath));
    if (real !== socketPath) variants.push(real);
  } catch {
    // the directory does not exist: the path as given is all we have
  }
  return variants;
}

export type DaemonLookup = { pid: number; comm: string } | { pid: undefined; reason: string };

/**
 * The PID of the process listening on a unix socket: the socket's inode from /proc/net/unix by path, then the
 * process among /proc/PID/fd/* whose descriptor links to `socket:[INODE]`. Works only for a daemon in this
 * network namespace, and needs the right to read its /proc/PID/fd (root).
 */
export function findListeningPid(socketPath: string, procRoot = '/proc'): DaemonLookup {
  const text = readText(`${procRoot}/net/unix`);
  if (text === undefined) return { pid: undefined, reason: `cannot read ${procRoot}/net/unix` };
  const inodes = new Set(listeningInodes(parseProcNetUnix(text), socketPathVariants(socketPath)));
  if (!inodes.size) {
    return { pid: undefined, reason: `no listening socket bound to ${socketPath} in this network namespace` };
  }
  const holders = holdersOf(inodes, procRoot);
  const pid = pickServer(holders);
  if (pid === undefined) return { pid: undefined, reason: `no process holds socket inode ${[...inodes].join(', ')}` };
  return { pid, comm: holders.find((h) => h.pid === pid)?.comm ?? '?' };
}

/** The processes holding a socket of one of these inodes (each once, by its first such fd). */
export function holdersOf(inodes: ReadonlySet<number>, procRoot = '/proc'): ProcInfo[] {
  const holders: ProcInfo[] = [];
  for (const pid of listPids(procRoot)) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`${procRoot}/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = fs.readlinkSync(`${procRoot}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = socketInodeOfLink(link);
      if (inode !== undefined && inodes.has(inode)) {
        const info = readProcInfo(pid, procRoot);
        if (info) holders.push(info);
        break;
      }
    }
  }
  return holders;
}
