// berth-monitor: the CRI log format, exit status files, stdin and attach clients, the control socket,
// a terminal through runc's console socket, OOM kills, and real OCI containers run by runc through it,
// from specs built by berth's CRI-to-OCI translation over a busybox layer berth unpacked.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContainerRequest } from '../../src/container/oci-spec';
import { helperBinary } from '../../src/util/helpers';
import { busyboxRootfs, containerRequest, standaloneSpec } from '../support/bundle';
import { until } from '../support/until';

// BERTH_HELPERS_DIR runs the tests against another build (e.g. native/build/asan/bin, with sanitizers).
const MONITOR = helperBinary('monitor');
// (Content may hold a \r, from a terminal.)
const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (P|F) ([^\n]*)$/;
const HAVE_RUNC = fs.existsSync('/usr/bin/runc');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(file: string, ms = 10_000): Promise<string> {
  return until(`${file} to appear`, () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined), ms);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Exit {
  exitCode: number;
  signal: number;
  oomKilled: boolean;
  finishedAt: string;
  error: string;
}

// Attach clients are plain unix stream sockets: frames [stream id][u32 BE length][payload] come in
// (1 stdout, 2 stderr, 3 the exit status at the end), stdin goes out raw; end() half-closes (this
// client's stdin is done), destroy() closes the connection. With "noread" the client never reads
// until resume() (a client that fell behind).
class AttachClient {
  readonly frames: { stream: number; data: string }[] = [];
  eof = false;
  error: Error | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      while (this.buf.length >= 5) {
        const length = this.buf.readUInt32BE(1);
        if (this.buf.length < 5 + length) break;
        this.frames.push({ stream: this.buf[0], data: this.buf.subarray(5, 5 + length).toString('latin1') });
        this.buf = this.buf.subarray(5 + length);
      }
    });
    socket.on('end', () => (this.eof = true));
    socket.on('error', (err) => (this.error = err));
  }

  static async connect(socketPath: string, mode: 'read' | 'noread' = 'read'): Promise<AttachClient> {
    const socket = net.connect({ path: socketPath, allowHalfOpen: true });
    if (mode === 'noread') socket.pause();
    clients.push(socket);
    const c = new AttachClient(socket);
    await once(socket, 'connect');
    return c;
  }

  /** What the client received on a stream (1 = stdout, 2 = stderr). */
  text(stream = 1): string {
    return this.frames.filter((f) => f.stream === stream).map((f) => f.data).join('');
  }

  /** The exit frame's JSON, once it came. */
  exit(): Exit | undefined {
    const f = this.frames.find((x) => x.stream === 3);
    return f && (JSON.parse(f.data) as Exit);
  }

  /** Bytes received after the last whole frame (a broken frame, at the end). */
  get leftover(): number {
    return this.buf.length;
  }

  send(data: string): void {
    this.socket.write(Buffer.from(data, 'latin1'));
  }

  /** Half-closes: this client's stdin is done, its output keeps coming. */
  halfClose(): void {
    this.socket.end();
  }

  resume(): void {
    this.socket.resume();
  }

  async disconnect(): Promise<void> {
    if (this.socket.destroyed) return;
    this.socket.destroy();
    await once(this.socket, 'close');
  }
}

/** A control-socket client: one reply line per command. */
async function control(socketPath: string, ...lines: string[]): Promise<string[]> {
  const sock = net.connect(socketPath);
  await once(sock, 'connect');
  sock.setEncoding('utf8');
  let text = '';
  sock.on('data', (d: string) => (text += d));
  sock.write(lines.map((l) => `${l}\n`).join(''));
  await until('control replies', () => text.split('\n').length > lines.length);
  sock.destroy();
  return text.trimEnd().split('\n');
}

let clients: net.Socket[] = [];

describe('berth-monitor', () => {
  let dir: string;
  let monitors: { proc: ChildProcess; pidFile: string }[];
  let cleanups: (() => void)[];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-monitor-'));
    monitors = [];
    clients = [];
    cleanups = [];
  });

  afterEach(async () => {
    for (const c of clients) c.destroy();
    for (const m of monitors) {
      if (m.proc.exitCode !== null || m.proc.signalCode !== null) continue;
      // The monitor's container first (its own child, still watched, so its pid is not reused).
      const pid = Number(fs.existsSync(m.pidFile) ? fs.readFileSync(m.pidFile, 'utf8') : 0);
      if (pid > 1 && alive(pid)) process.kill(pid, 'SIGKILL');
      m.proc.kill('SIGKILL');
    }
    await Promise.all(monitors.filter((m) => m.proc.exitCode === null && m.proc.signalCode === null).map((m) => once(m.proc, 'exit')));
    for (const f of cleanups.reverse()) f();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const files = () => ({ log: path.join(dir, 'log'), exit: path.join(dir, 'exit'), pid: path.join(dir, 'pid') });
  const baseArgs = () => ['--log', files().log, '--exit-file', files().exit, '--pid-file', files().pid];
  const monitor = (...cmd: string[]) => execFileSync(MONITOR, [...baseArgs(), '--', ...cmd]);
  const records = () =>
    fs.readFileSync(files().log, 'utf8').trimEnd().split('\n').map((l) => LINE.exec(l)?.slice(1));
  const readExit = () => JSON.parse(fs.readFileSync(files().exit, 'utf8')) as Exit;

  /** Starts a monitor in the background; its stderr is collected. */
  function start(options: string[], cmd: string[]): { proc: ChildProcess; stderr: () => string } {
    const proc = spawn(MONITOR, [...baseArgs(), ...options, '--', ...cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    monitors.push({ proc, pidFile: files().pid });
    return { proc, stderr: () => stderr };
  }

  const logHas = (re: RegExp) => () => fs.existsSync(files().log) && re.test(fs.readFileSync(files().log, 'utf8'));

  it('writes stdout and stderr as CRI log records and records the exit code', () => {
    monitor('/bin/sh', '-c', 'echo hello; echo oops >&2; printf tail; exit 3');
    expect(records()).toEqual(expect.arrayContaining([['stdout', 'F', 'hello'], ['stderr', 'F', 'oops'], ['stdout', 'F', 'tail']]));
    expect(readExit()).toMatchObject({ exitCode: 3, signal: 0, oomKilled: false, error: '' });
    expect(readExit().finishedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  it('splits long lines into partial records and reports a kill by signal', () => {
    monitor('/bin/sh', '-c', 'head -c 40000 /dev/zero | tr "\\0" a; echo; kill -9 $$');
    const recs = fs.readFileSync(files().log, 'utf8').trimEnd().split('\n').map((l) => LINE.exec(l));
    expect(recs.map((r) => r?.[2])).toEqual(['P', 'P', 'F']);
    expect(recs.map((r) => r?.[3].length).reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBe(40000);
    expect(readExit()).toMatchObject({ exitCode: 137, signal: 9 });
  });

  it('keeps stdin /dev/null without --stdin and refuses options that do not go together', () => {
    monitor('/bin/sh', '-c', 'cat; echo "eof at once"');
    expect(records()).toEqual([['stdout', 'F', 'eof at once']]);
    for (const bad of [['--stdin-once'], ['--tty'], ['--console-socket', path.join(dir, 'c')]]) {
      expect(() => execFileSync(MONITOR, [...baseArgs(), ...bad, '--', 'true'], { stdio: 'pipe' })).toThrow(/usage/);
    }
  });

  it('feeds stdin from attach clients and sends the output to every client at once', async () => {
    const attach = path.join(dir, 'attach');
    const m = start(['--stdin', '--attach-socket', attach], ['cat']);
    await waitFor(files().pid);
    const a = await AttachClient.connect(attach);
    const b = await AttachClient.connect(attach);
    a.send('from a\n');
    await until('both clients to get a', () => a.text().includes('from a\n') && b.text().includes('from a\n'));
    b.send('from b\n');
    await until('both clients to get b', () => a.text() === 'from a\nfrom b\n' && b.text() === 'from a\nfrom b\n');
    await until('the log', logHas(/F from b$/m));
    expect(records()).toEqual([['stdout', 'F', 'from a'], ['stdout', 'F', 'from b']]);
    expect(new Set(a.frames.map((f) => f.stream))).toEqual(new Set([1]));
    // The monitor itself complained of nothing.
    expect(m.stderr()).toBe('');
  });

  it('frames stderr with stream id 2', async () => {
    const attach = path.join(dir, 'attach');
    start(['--stdin', '--attach-socket', attach], ['/bin/sh', '-c', 'read x; echo "out $x"; echo "err $x" >&2']);
    await waitFor(files().pid);
    const a = await AttachClient.connect(attach);
    a.send('go\n');
    await until('the container to exit', () => fs.existsSync(files().exit));
    await until('the connection to end', () => a.eof);
    expect(a.text(1)).toBe('out go\n');
    expect(a.text(2)).toBe('err go\n');
    expect(readExit().exitCode).toBe(0);
    expect(a.frames.at(-1)?.stream).toBe(3);
  });

  it('ends with an exit frame carrying the exit file, then EOF, to every client', async () => {
    const attach = path.join(dir, 'attach');
    start(['--stdin', '--attach-socket', attach], ['/bin/sh', '-c', 'read x; echo "bye $x"; exit 4']);
    await waitFor(files().pid);
    const a = await AttachClient.connect(attach);
    // Like berthd's exec without stdin: half-closed at once, reading to the end.
    const watcher = await AttachClient.connect(attach);
    watcher.halfClose();
    a.send('now\n');
    await until('both connections to end', () => a.eof && watcher.eof);
    const exitFile = fs.readFileSync(files().exit, 'utf8');
    for (const c of [a, watcher]) {
      expect(c.text()).toBe('bye now\n');
      expect(c.frames.map((f) => f.stream)).toEqual([1, 3]);
      expect(c.frames[1].data).toBe(exitFile);
      expect(c.exit()).toMatchObject({ exitCode: 4, signal: 0, oomKilled: false, error: '' });
      expect(c.leftover).toBe(0);
      expect(c.error).toBeUndefined();
    }
  });

  it('carries on when attach clients disconnect, without --stdin-once', async () => {
    const attach = path.join(dir, 'attach');
    start(['--stdin', '--attach-socket', attach], ['cat']);
    const pid = Number(await waitFor(files().pid));
    const a = await AttachClient.connect(attach);
    a.send('one\n');
    await until('the echo', () => a.text() === 'one\n');
    await a.disconnect();
    const idle = await AttachClient.connect(attach);
    await idle.disconnect();
    const b = await AttachClient.connect(attach);
    b.send('two\n');
    await until('the echo to the next client', () => b.text() === 'two\n');
    await until('the log', logHas(/F two$/m));
    expect(alive(pid)).toBe(true);
    expect(fs.existsSync(files().exit)).toBe(false);
    // Ending the container ends the connection, after the exit file is written.
    process.kill(pid, 'SIGTERM');
    await until('the connection to end', () => b.eof);
    expect(readExit()).toMatchObject({ exitCode: 143, signal: 15 });
  });

  it('closes stdin when the first client that sent stdin leaves, with --stdin-once', async () => {
    const attach = path.join(dir, 'attach');
    start(['--stdin', '--stdin-once', '--attach-socket', attach], ['/bin/sh', '-c', 'cat; echo "stdin closed"']);
    await waitFor(files().pid);
    const watcher = await AttachClient.connect(attach);
    const idle = await AttachClient.connect(attach);
    await idle.disconnect(); // sent nothing: stdin stays open
    const a = await AttachClient.connect(attach);
    a.send('last words\n');
    await until('the echo', () => watcher.text() === 'last words\n');
    // Kept: the claim is that nothing happens (stdin stays open while the stdin-once client stays).
    await sleep(100);
    expect(fs.existsSync(files().exit)).toBe(false);
    await a.disconnect();
    expect(JSON.parse(await waitFor(files().exit))).toMatchObject({ exitCode: 0 });
    expect(records()).toEqual([['stdout', 'F', 'last words'], ['stdout', 'F', 'stdin closed']]);
    await until('the watcher to see the end', () => watcher.eof);
    expect(watcher.text()).toBe('last words\nstdin closed\n');
  });

  it('ends stdin when the stdin-once client half-closes, and keeps sending it the output', async () => {
    const attach = path.join(dir, 'attach');
    start(['--stdin', '--stdin-once', '--attach-socket', attach], ['/bin/sh', '-c', 'cat; echo "stdin closed"; sleep 0.3; echo "still here" >&2']);
    await waitFor(files().pid);
    const idle = await AttachClient.connect(attach);
    await idle.disconnect(); // a full close of a client that sent nothing: stdin stays open
    const a = await AttachClient.connect(attach);
    a.send('part one\n');
    await until('the echo', () => a.text() === 'part one\n');
    // Kept: the claim is that nothing happens (stdin stays open until the half-close).
    await sleep(100);
    expect(fs.existsSync(files().exit)).toBe(false);
    a.halfClose();
    await until('the end of the output', () => a.eof);
    expect(a.text(1)).toBe('part one\nstdin closed\n');
    expect(a.text(2)).toBe('still here\n');
    expect(a.exit()).toMatchObject({ exitCode: 0 });
    expect(readExit()).toMatchObject({ exitCode: 0 });
  });

  it('counts a client that half-closes before sending anything as the stdin-once client', async () => {
    const attach = path.join(dir, 'attach');
    start(['--stdin', '--stdin-once', '--attach-socket', attach], ['/bin/sh', '-c', 'cat; echo "stdin closed"']);
    await waitFor(files().pid);
    const watcher = await AttachClient.connect(attach);
    const a = await AttachClient.connect(attach);
    a.halfClose();
    await until('both connections to end', () => a.eof && watcher.eof);
    for (const c of [a, watcher]) {
      expect(c.text()).toBe('stdin closed\n');
      expect(c.exit()).toMatchObject({ exitCode: 0 });
    }
    // Without --stdin-once, a half-close leaves the container's stdin open.
    fs.rmSync(files().exit);
    fs.rmSync(files().pid);
    const attach2 = path.join(dir, 'attach2');
    start(['--stdin', '--attach-socket', attach2], ['/bin/sh', '-c', 'cat; echo "stdin closed"']);
    const pid = Number(await waitFor(files().pid));
    const b = await AttachClient.connect(attach2);
    b.halfClose();
    // Kept: the claim is that nothing happens (the half-close does not end the container's stdin).
    await sleep(300);
    expect(fs.existsSync(files().exit)).toBe(false);
    expect(b.eof).toBe(false);
    const c = await AttachClient.connect(attach2);
    c.send('more\n');
    await until('the echo to the half-closed client', () => b.text() === 'more\n');
    process.kill(pid, 'SIGTERM');
    await until('the end', () => b.eof && c.eof);
    expect(b.exit()).toMatchObject({ exitCode: 143, signal: 15 });
  });

  it('runs CMD only once the first attach client connected, with --wait-attach', async () => {
    const attach = path.join(dir, 'attach');
    start(['--attach-socket', attach, '--wait-attach'], ['echo', 'early']);
    await until('the socket', () => fs.existsSync(attach));
    // Kept: the claim is that nothing happens (CMD does not run) until a client connects.
    await sleep(300);
    expect(fs.existsSync(files().pid)).toBe(false);
    expect(fs.existsSync(files().exit)).toBe(false);
    const a = await AttachClient.connect(attach);
    a.halfClose();
    await until('the connection to end', () => a.eof);
    expect(a.text()).toBe('early\n');
    expect(a.exit()).toMatchObject({ exitCode: 0 });
    expect(records()).toEqual([['stdout', 'F', 'early']]);
    expect(Number(fs.readFileSync(files().pid, 'utf8'))).toBeGreaterThan(1);
    expect(() => execFileSync(MONITOR, [...baseArgs(), '--wait-attach', '--', 'true'], { stdio: 'pipe' })).toThrow(/usage/);
  });

  it('holds the output for a client that does not read, with --attach-backpressure, and loses nothing', async () => {
    const attach = path.join(dir, 'attach');
    const LONG = '0123456789'.repeat(10);
    start(['--attach-socket', attach, '--wait-attach', '--attach-backpressure'], ['/bin/sh', '-c', `yes ${LONG} | head -n 200000`]);
    await until('the socket', () => fs.existsSync(attach));
    const slow = await AttachClient.connect(attach, 'noread');
    // 20 MB, five times what its socket buffer holds: the command waits on its pipe meanwhile.
    // Kept: the claim is that nothing happens (the command does not finish) while the client does not read.
    await sleep(1500);
    expect(fs.existsSync(files().exit)).toBe(false);
    slow.resume();
    await until('the end', () => slow.eof, 30_000);
    expect(slow.text()).toBe(`${LONG}\n`.repeat(200000));
    expect(slow.exit()).toMatchObject({ exitCode: 0 });
  }, 60_000);

  it('disconnects a client that does not read, and neither the container nor the log waits for it', async () => {
    const attach = path.join(dir, 'attach');
    const go = path.join(dir, 'go');
    // 20 MB of output, more than a client's socket buffer (4 MiB) holds.
    const LONG = '0123456789'.repeat(10);
    const m = start(['--attach-socket', attach], ['/bin/sh', '-c', `while [ ! -e ${go} ]; do sleep 0.02; done; yes ${LONG} | head -n 200000`]);
    await waitFor(files().pid);
    const sockets = () => fs.readdirSync(`/proc/${m.proc.pid}/fd`).filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/${m.proc.pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
    const listening = sockets();
    const slow = await AttachClient.connect(attach, 'noread');
    const reader = await AttachClient.connect(attach);
    await until('the monitor to accept both', () => sockets() >= listening + 2);
    fs.writeFileSync(go, '');
    const exit = JSON.parse(await waitFor(files().exit, 30_000)) as Exit;
    expect(exit.exitCode).toBe(0);
    const recs = records();
    expect(recs).toHaveLength(200000);
    expect(recs.every((r) => r?.[2] === LONG)).toBe(true);
    expect(m.stderr()).toMatch(/attach client disconnected: it does not read fast enough/);
    // A client that keeps up gets the output whole; one cut off got a beginning of it, without gaps.
    await until('the reader to be disconnected', () => reader.eof);
    const all = `${LONG}\n`.repeat(200000);
    expect(all.startsWith(reader.text())).toBe(true);
    expect(reader.text().length).toBeGreaterThan(0);
    // The client cut off gets whole frames, a beginning of the output, then EOF (no exit frame).
    slow.resume();
    await until('the slow client to see EOF', () => slow.eof);
    expect(slow.leftover).toBe(0);
    expect(slow.text().length).toBeGreaterThan(0);
    expect(slow.text().length).toBeLessThan(all.length);
    expect(all.startsWith(slow.text())).toBe(true);
    expect(slow.exit()).toBeUndefined();
  }, 60_000);

  it('takes resize and reopen on the control socket, and reopens the log on SIGUSR1 too', async () => {
    const attach = path.join(dir, 'attach');
    const ctl = path.join(dir, 'control');
    start(['--stdin', '--attach-socket', attach, '--control-socket', ctl], ['cat']);
    await waitFor(files().pid);
    const a = await AttachClient.connect(attach);
    a.send('before\n');
    await until('the log', logHas(/F before$/m));
    fs.renameSync(files().log, `${files().log}.1`);
    expect(await control(ctl, 'reopen')).toEqual(['ok']);
    a.send('after\n');
    await until('the new log', logHas(/F after$/m));
    fs.renameSync(files().log, `${files().log}.2`);
    monitors[0].proc.kill('SIGUSR1');
    await until('the log to be reopened', () => fs.existsSync(files().log));
    a.send('third\n');
    await until('the third log', logHas(/F third$/m));
    expect(fs.readFileSync(`${files().log}.1`, 'utf8')).toMatch(/^\S+ stdout F before\n$/);
    expect(fs.readFileSync(`${files().log}.2`, 'utf8')).toMatch(/^\S+ stdout F after\n$/);
    expect(fs.readFileSync(files().log, 'utf8')).toMatch(/^\S+ stdout F third\n$/);
    expect(await control(ctl, 'resize 24 80', 'resize 0 80', 'bogus', '', 'reopen')).toEqual([
      'error the container has no terminal',
      'error resize wants two numbers from 1 to 65535: resize 0 80',
      'error unknown command: bogus',
      'error unknown command: ',
      'ok',
    ]);
  });

  it('serves sockets whose paths are longer than a socket address holds', async () => {
    const deep = path.join(dir, 'x'.repeat(100));
    fs.mkdirSync(deep);
    const ctl = path.join(deep, 'control');
    expect(ctl.length).toBeGreaterThan(108);
    start(['--control-socket', ctl], ['sleep', '100']);
    await waitFor(files().pid);
    await until('the socket', () => fs.existsSync(ctl));
    const dfd = fs.openSync(deep, 'r');
    try {
      expect(await control(`/proc/self/fd/${dfd}/control`, 'reopen')).toEqual(['ok']);
    } finally {
      fs.closeSync(dfd);
    }
  });

  it('reads the OOM kill count of cgroup v1 and v2 memory cgroups when the container exits', () => {
    const v2 = path.join(dir, 'v2');
    const v1 = path.join(dir, 'v1');
    fs.mkdirSync(v2);
    fs.mkdirSync(v1);
    fs.writeFileSync(path.join(v2, 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n');
    fs.writeFileSync(path.join(v1, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n');
    execFileSync(MONITOR, [...baseArgs(), '--oom-cgroup', v2, '--', 'true']);
    expect(readExit()).toMatchObject({ exitCode: 0, oomKilled: true });
    execFileSync(MONITOR, [...baseArgs(), '--oom-cgroup', v1, '--', 'true']);
    expect(readExit()).toMatchObject({ exitCode: 0, oomKilled: false });
    fs.writeFileSync(path.join(v1, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    execFileSync(MONITOR, [...baseArgs(), '--oom-cgroup', v1, '--', 'true']);
    expect(readExit()).toMatchObject({ exitCode: 0, oomKilled: true });
    // A cgroup already gone is no OOM kill, and no failure.
    execFileSync(MONITOR, [...baseArgs(), '--oom-cgroup', path.join(dir, 'gone'), '--', 'true'], { stdio: 'pipe' });
    expect(readExit()).toMatchObject({ exitCode: 0, oomKilled: false });
  });

  // cgroup v2 with the systemd driver: the scope's cgroup is removed as soon as the container's last
  // process died, maybe before the monitor reads memory.events at the exit. So the monitor holds
  // memory.events open from when the container's pid is known and polls it for POLLPRI, which kernfs
  // reports (with POLLERR) as soon as the file changes; on a wake-up it reads the file again and an
  // oom_kill count above the one read at the start is an OOM kill. A plain directory stands in for the
  // cgroup here, and a plain file never reports POLLPRI (it always polls readable, which must not
  // count: the monitor would spin). So this checks that the watch is set up and stays idle, and the
  // rules of the read at the exit when a watch ran; the POLLPRI path itself is proven in the node VM
  // suite (test/node/node-vm.test.ts, systemd cgroup driver: a memory.max OOM kill is "OOMKilled 137").
  it('watches memory.events while the container runs without spinning, and reads it again at the exit', async () => {
    const cgroup = path.join(dir, 'cgroup');
    fs.mkdirSync(cgroup);
    const events = path.join(cgroup, 'memory.events');
    const go = path.join(dir, 'go');
    // Whether the monitor has a file open under the cgroup directory.
    const holds = (pid: number, file: string) =>
      fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(file);
        } catch {
          return false;
        }
      });
    // utime + stime, in clock ticks (fields 14 and 15; the command, field 2, may hold spaces).
    const cpuTicks = (pid: number) => {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]);
    };
    const container = ['sh', '-c', `while [ ! -e ${go} ]; do sleep 0.02; done; rm ${go}`];

    // The watch holds the file from the start; the file polls readable all along, which is no
    // wake-up: the monitor stays idle (spinning, it would use about 100 ticks a second).
    fs.writeFileSync(events, 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n');
    let m = start(['--oom-cgroup', cgroup], container);
    await waitFor(files().pid);
    expect(holds(m.proc.pid!, events)).toBe(true);
    const before = cpuTicks(m.proc.pid!);
    // Kept: the claim is that nothing happens (no CPU used) over a second. Load cannot break it: an
    // idle process uses no ticks however busy the machine is.
    await sleep(1000);
    expect(cpuTicks(m.proc.pid!) - before).toBeLessThan(20);
    // A count that rose is still read at the exit, with the cgroup there (cgroup v1, cgroupfs driver).
    fs.writeFileSync(events, 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n');
    fs.writeFileSync(go, '');
    await once(m.proc, 'exit');
    expect(m.proc.exitCode).toBe(0);
    expect(readExit()).toMatchObject({ exitCode: 0, oomKilled: true });
    expect(m.stderr()).toBe('');

    // A cgroup gone by the exit, after a watch ran, is no error: what the watch saw (here nothing)
    // stands.
    fs.rmSync(files().pid);
    fs.writeFileSync(events, 'low 0\nhigh 0\nmax 0\noom 2\noom_kill 2\noom_group_kill 0\n');
    m = start(['--oom-cgroup', cgroup], container);
    await waitFor(files().pid);
    expect(holds(m.proc.pid!, events)).toBe(true);
    fs.rmSync(cgroup, { recursive: true });
    fs.writeFileSync(go, '');
    await once(m.proc, 'exit');
    expect(m.proc.exitCode).toBe(0);
    expect(readExit()).toMatchObject({ exitCode: 0, oomKilled: false });
    expect(m.stderr()).toBe('');

    // cgroup v1 (no memory.events): no watch, the read at the exit as before.
    fs.rmSync(files().pid);
    fs.mkdirSync(cgroup);
    fs.writeFileSync(path.join(cgroup, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    m = start(['--oom-cgroup', cgroup], container);
    await waitFor(files().pid);
    expect(holds(m.proc.pid!, cgroup)).toBe(false);
    fs.writeFileSync(go, '');
    await once(m.proc, 'exit');
    expect(m.proc.exitCode).toBe(0);
    expect(readExit()).toMatchObject({ exitCode: 0, oomKilled: true });
    expect(m.stderr()).toBe('');
  });

  describe.runIf(HAVE_RUNC)('with runc', () => {
    let rootfs: string;

    beforeEach(async () => {
      rootfs = path.join(dir, 'bundle', 'rootfs');
      await busyboxRootfs(rootfs, dir);
    });

    /** Writes the bundle's config.json for a container; returns its id and memory cgroup dir. */
    function bundle(name: string, req: Partial<ContainerRequest>): { id: string; memoryCgroup: string } {
      const id = `berth-monitor-${name}-${process.pid}`;
      const full = containerRequest({ capabilities: { add: [], drop: ['ALL'] }, ...req });
      const spec = standaloneSpec({
        req: full,
        rootfs,
        filesDir: dir,
        cgroupsPath: `/berth-test/${id}`,
        user: { uid: 1000, gid: 1000, additionalGids: [], home: '/home/berth' },
      });
      spec.process.terminal = full.tty;
      fs.writeFileSync(path.join(dir, 'bundle', 'config.json'), JSON.stringify(spec));
      const runcRoot = path.join(dir, 'runc');
      cleanups.push(() => {
        try {
          execFileSync('runc', ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
        } catch {
          // already gone
        }
        for (const root of fs.readdirSync('/sys/fs/cgroup')) {
          for (const d of [path.join('/sys/fs/cgroup', root, 'berth-test', id), path.join('/sys/fs/cgroup', root, 'berth-test')]) {
            try {
              fs.rmdirSync(d);
            } catch {
              // gone already, not in this hierarchy, or another test's container is still in it
            }
          }
        }
        for (const d of [path.join('/sys/fs/cgroup', 'berth-test', id), path.join('/sys/fs/cgroup', 'berth-test')]) {
          try {
            fs.rmdirSync(d);
          } catch {
            // not cgroup v2
          }
        }
      });
      const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
      return { id, memoryCgroup: path.join('/sys/fs/cgroup', v2 ? '' : 'memory', 'berth-test', id) };
    }

    /** Starts a monitor over `runc create`, waits for the container, then `runc start`s it. */
    async function runContainer(id: string, monitorOptions: string[], createOptions: string[] = []) {
      const runcRoot = path.join(dir, 'runc');
      const containerPid = path.join(dir, 'container.pid');
      const m = start(
        [...monitorOptions, '--container-pid-file', containerPid],
        ['runc', '--root', runcRoot, 'create', '--bundle', path.join(dir, 'bundle'), '--pid-file', containerPid, ...createOptions, id],
      );
      const pid = Number(await waitFor(files().pid));
      expect(pid).toBeGreaterThan(1);
      execFileSync('runc', ['--root', runcRoot, 'start', id]);
      return m;
    }

    it('watches a container runc creates from a spec berth built', async () => {
      const { id, memoryCgroup } = bundle('plain', {
        args: ['echo "uid=$(id -u) host=$(hostname)"; cat /proc/self/status | grep CapEff; exit 7'],
      });
      await runContainer(id, ['--oom-cgroup', memoryCgroup]);
      const exit = JSON.parse(await waitFor(files().exit)) as Exit;
      expect(exit).toMatchObject({ exitCode: 7, oomKilled: false, error: '' });
      const log = fs.readFileSync(files().log, 'utf8');
      expect(log).toMatch(/ stdout F uid=1000 host=box$/m);
      expect(log).toMatch(/ stdout F CapEff:\s+0000000000000000$/m);
    });

    it('reports a container the OOM killer killed', async () => {
      const { id, memoryCgroup } = bundle('oom', {
        args: ['echo allocating; x=$(yes | head -c 200000000); echo "still here"'],
        resources: { memoryLimit: 16 << 20 },
      });
      await runContainer(id, ['--oom-cgroup', memoryCgroup]);
      const exit = JSON.parse(await waitFor(files().exit, 30_000)) as Exit;
      expect(exit).toMatchObject({ oomKilled: true, signal: 9, exitCode: 137 });
      const log = fs.readFileSync(files().log, 'utf8');
      expect(log).toMatch(/ stdout F allocating$/m);
      expect(log).not.toMatch(/still here/);
    }, 60_000);

    it('runs a terminal through the console socket: output logged, input and resize applied', async () => {
      const { id } = bundle('tty', {
        tty: true,
        stdin: true,
        args: ['read line; stty size; echo "got $line"; exit 5'],
      });
      const consoleSocket = path.join(dir, 'console');
      const attach = path.join(dir, 'attach');
      const ctl = path.join(dir, 'control');
      await runContainer(
        id,
        ['--tty', '--console-socket', consoleSocket, '--stdin', '--attach-socket', attach, '--control-socket', ctl],
        ['--console-socket', consoleSocket],
      );
      expect(fs.existsSync(consoleSocket)).toBe(false); // removed once the runtime sent the master
      expect(await control(ctl, 'resize 30 100')).toEqual(['ok']);
      const a = await AttachClient.connect(attach);
      a.send('hello\n');
      const exit = JSON.parse(await waitFor(files().exit)) as Exit;
      expect(exit).toMatchObject({ exitCode: 5, oomKilled: false });
      const lines = records().map((r) => r?.slice(0, 2).join(' ') + ' ' + r?.[2].replace(/\r$/, ''));
      expect(lines).toEqual(['stdout F hello', 'stdout F 30 100', 'stdout F got hello']);
      await until('the connection to end', () => a.eof);
      expect(a.text()).toBe('hello\r\n30 100\r\ngot hello\r\n');
      expect(new Set(a.frames.slice(0, -1).map((f) => f.stream))).toEqual(new Set([1]));
      expect(a.exit()).toMatchObject({ exitCode: 5 });
    });

    /** A `sh -c script` container on a terminal with stdin-once, attached, with "typed" typed and echoed. */
    async function typeIntoStdinOnceTerminal(name: string, script: string): Promise<AttachClient> {
      const { id } = bundle(name, { tty: true, stdin: true, args: [script] });
      const consoleSocket = path.join(dir, 'console');
      const attach = path.join(dir, 'attach');
      await runContainer(
        id,
        ['--tty', '--console-socket', consoleSocket, '--stdin', '--stdin-once', '--attach-socket', attach],
        ['--console-socket', consoleSocket],
      );
      const a = await AttachClient.connect(attach);
      a.send('typed\n');
      await until('the echo', () => a.text().includes('typed\r\ntyped\r\n'));
      return a;
    }

    it('ends the input of a terminal with ^D when the stdin-once client leaves', async () => {
      const a = await typeIntoStdinOnceTerminal('ttyonce', 'cat; echo "input ended"');
      await a.disconnect();
      expect(JSON.parse(await waitFor(files().exit))).toMatchObject({ exitCode: 0 });
      expect(records().map((r) => r?.[2].replace(/\r$/, ''))).toEqual(['typed', 'typed', 'input ended']);
    });

    it('ends the input of a terminal with ^D when the stdin-once client half-closes, and sends it the rest', async () => {
      const a = await typeIntoStdinOnceTerminal('ttyhalf', 'cat; echo "input ended"; exit 6');
      a.halfClose();
      await until('the connection to end', () => a.eof);
      expect(a.text().replace(/\r/g, '')).toMatch(/typed\ntyped\n.*input ended\n$/s);
      expect(a.exit()).toMatchObject({ exitCode: 6 });
      expect(readExit()).toMatchObject({ exitCode: 6 });
    });

    it('fails the container with the runtime error when create fails', async () => {
      const { id } = bundle('bad', { args: ['true'] });
      const spec = JSON.parse(fs.readFileSync(path.join(dir, 'bundle', 'config.json'), 'utf8')) as { process: { args: string[] } };
      spec.process.args = ['/no/such/binary'];
      fs.writeFileSync(path.join(dir, 'bundle', 'config.json'), JSON.stringify(spec));
      const runcRoot = path.join(dir, 'runc');
      start(['--container-pid-file', path.join(dir, 'container.pid')], [
        'runc', '--root', runcRoot, 'create', '--bundle', path.join(dir, 'bundle'), '--pid-file', path.join(dir, 'container.pid'), id,
      ]);
      const exit = JSON.parse(await waitFor(files().exit)) as Exit;
      expect(exit).toMatchObject({ error: "the runtime's create failed", oomKilled: false });
      expect(exit.exitCode).not.toBe(0);
      expect(fs.existsSync(files().pid)).toBe(false);
      expect(fs.readFileSync(files().log, 'utf8')).toMatch(/no such file or directory/);
    });
  });
});
