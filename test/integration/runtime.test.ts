// berth-runtime against runc: the same bundles (a busybox layer berth unpacked, specs from berth's CRI-to-OCI
// translation) run by both, with the same results: exit codes, output, user and groups, capabilities, masked
// and read-only paths, seccomp, cgroup limits, state transitions, exec, update, delete and failed creates.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerRequest, OciSpec } from '../../src/container/oci-spec';
import { helperBinary } from '../../src/util/helpers';
import { busyboxRootfs, containerRequest, standaloneSpec } from '../support/bundle';
import { until } from '../support/until';

const BERTH_RUNTIME = helperBinary('runtime');
const RUNC = '/usr/bin/runc';
const PINNS = helperBinary('pinns');
const CGROUP_PARENT = '/berth-rt-test';

// A minimal subreaper standing in for berth-monitor: runs `create` with its stdout and stderr in OUT, then
// waits for the container's init (reparented to it) and records its exit code.
const REAPER = `
import ctypes, json, os, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
out, status_dir, pid_file = sys.argv[1:4]
cmd = sys.argv[4:]
def code(st):
    c = os.waitstatus_to_exitcode(st)
    return 128 - c if c < 0 else c
def record(name, obj):
    tmp = os.path.join(status_dir, name + '.tmp')
    with open(tmp, 'w') as f: json.dump(obj, f)
    os.rename(tmp, os.path.join(status_dir, name))
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
pid = os.fork()
if pid == 0:
    os.dup2(os.open('/dev/null', os.O_RDONLY), 0); os.dup2(fd, 1); os.dup2(fd, 2)
    os.execvp(cmd[0], cmd)
_, st = os.waitpid(pid, 0)
record('created.json', {'code': code(st)})
if code(st) != 0: sys.exit(0)
init = int(open(pid_file).read())
while True:
    try: p, st = os.wait()
    except ChildProcessError: break
    if p == init:
        record('exit.json', {'exitCode': code(st)}); break
`;

// Receives the pty master a runtime sends to --console-socket and copies what the container writes to OUT.
const CONSOLE = `
import os, socket, sys
path, out = sys.argv[1:3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(path); s.listen(1)
open(out + '.ready', 'w').close()
conn, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
with open(out, 'wb', buffering=0) as f:
    while True:
        try: data = os.read(fds[0], 4096)
        except OSError: break
        if not data: break
        f.write(data)
`;

interface Runtime {
  name: string;
  bin: string;
}

const RUNTIMES: Runtime[] = [
  { name: 'berth-runtime', bin: BERTH_RUNTIME },
  { name: 'runc', bin: RUNC },
];

/** What each runtime printed, by test: compared across runtimes at the end. */
const seen: Record<string, Record<string, unknown>> = {};

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function cgroupDirs(id: string): string[] {
  const found: string[] = [];
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const d = path.join('/sys/fs/cgroup', h, CGROUP_PARENT, id);
    if (fs.existsSync(d)) found.push(d);
  }
  return found;
}

// CAP_SYS_RESOURCE is bit 24 of the bounding set; the hard limit on open files this process (and create) has.
const noSysResource = (BigInt(`0x${/^CapBnd:\s+([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]}`) & (1n << 24n)) === 0n;
const hardNofile = Number(/^Max open files\s+\d+\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))![1]);


describe.each(RUNTIMES)('$name', (rt) => {
  let dir: string;
  let rootfs: string;
  let root: string;
  let counter = 0;
  const ids: string[] = [];
  const helpers: ChildProcess[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-rt-${rt.name}-`));
    rootfs = path.join(dir, 'rootfs');
    root = path.join(dir, 'state');
    await busyboxRootfs(rootfs, dir);
    fs.writeFileSync(path.join(dir, 'reaper.py'), REAPER);
    fs.writeFileSync(path.join(dir, 'console.py'), CONSOLE);
    seen[rt.name] = {};
  });

  afterEach(() => {
    for (const id of ids.splice(0)) {
      spawnSync(rt.bin, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
      for (const d of cgroupDirs(id)) {
        try {
          fs.rmdirSync(d);
        } catch {
          // busy or gone
        }
      }
    }
    for (const h of helpers.splice(0)) h.kill('SIGKILL');
  });

  afterAll(() => {
    for (const h of fs.readdirSync('/sys/fs/cgroup')) {
      try {
        fs.rmdirSync(path.join('/sys/fs/cgroup', h, CGROUP_PARENT));
      } catch {
        // not empty (another run), or not there
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const newId = () => {
    const id = `rt-${rt.name}-${process.pid}-${++counter}`;
    ids.push(id);
    return id;
  };

  const spec = (id: string, req: Partial<ContainerRequest>, user = { uid: 0, gid: 0, additionalGids: [] as number[], home: '/root' }): OciSpec =>
    standaloneSpec({
      req: containerRequest(req),
      rootfs,
      filesDir: dir,
      cgroupsPath: `${CGROUP_PARENT}/${id}`,
      user,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    });

  const runtime = (...args: string[]) => spawnSync(rt.bin, ['--root', root, ...args], { encoding: 'utf8', timeout: 30_000 });

  const bundleOf = (id: string, s: OciSpec): string => {
    const bundle = path.join(dir, 'bundles', id);
    fs.mkdirSync(bundle, { recursive: true });
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(s));
    return bundle;
  };

  /** `create` under the reaper; resolves once create has exited. */
  async function create(id: string, s: OciSpec, extra: string[] = []) {
    const bundle = bundleOf(id, s);
    const status = path.join(bundle, 'status');
    fs.mkdirSync(status);
    const out = path.join(bundle, 'out');
    const pidFile = path.join(bundle, 'pid');
    const child = spawn(
      'python3',
      [path.join(dir, 'reaper.py'), out, status, pidFile, rt.bin, '--root', root, '--log', path.join(bundle, 'log'), '--log-format', 'json',
        'create', '--bundle', bundle, '--pid-file', pidFile, ...extra, id],
      { stdio: 'ignore' },
    );
    helpers.push(child);
    const created = await until('create', () => readJson(path.join(status, 'created.json')) as { code: number } | undefined);
    const pid = created.code === 0 ? Number(fs.readFileSync(pidFile, 'utf8')) : 0;
    return {
      code: created.code,
      pid,
      output: () => fs.readFileSync(out, 'utf8'),
      exit: async () => (await until('exit', () => readJson(path.join(status, 'exit.json')) as { exitCode: number } | undefined)).exitCode,
      log: () => fs.readFileSync(path.join(bundle, 'log'), 'utf8'),
    };
  }

  async function run(id: string, s: OciSpec) {
    const c = await create(id, s);
    expect(c.code, c.output()).toBe(0);
    const started = runtime('start', id);
    expect(started.status, started.stderr).toBe(0);
    const exitCode = await c.exit();
    return { exitCode, output: c.output() };
  }

  const state = (id: string) => JSON.parse(runtime('state', id).stdout) as { status: string; pid: number; id: string; bundle: string };

  it('runs a container to its exit code with the spec user, groups, hostname, env, cwd and no capabilities', async () => {
    const id = newId();
    const s = spec(
      id,
      {
        args: ['echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) host=$(hostname) greeting=$GREETING cwd=$(pwd) home=$HOME"; grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status; exit 7'],
        capabilities: { add: [], drop: ['ALL'] },
        workingDir: '/tmp',
      },
      { uid: 1000, gid: 1000, additionalGids: [10, 50000], home: '/home/berth' },
    );
    const { exitCode, output } = await run(id, s);
    expect(exitCode).toBe(7);
    expect(output).toContain('uid=1000 gid=1000 groups=1000 10 50000 host=box greeting=hi cwd=/tmp home=/home/berth');
    expect(output).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(output).toMatch(/^CapBnd:\s+0000000000000000$/m);
    seen[rt.name].user = output;
  });

  it('gives root the default capabilities, plus added ones, in every set', async () => {
    const id = newId();
    const s = spec(id, { args: ['grep -E "^Cap(Eff|Prm|Bnd|Inh|Amb)" /proc/self/status'], capabilities: { add: ['NET_ADMIN'], drop: ['MKNOD'] } });
    const { exitCode, output } = await run(id, s);
    expect(exitCode).toBe(0);
    const caps = Object.fromEntries([...output.matchAll(/^(Cap\w+):\s+([0-9a-f]+)$/gm)].map((m) => [m[1], m[2]]));
    // The default set less MKNOD (bit 27), plus NET_ADMIN (bit 12).
    expect(caps.CapEff).toBe('00000000a00435fb');
    expect(caps.CapBnd).toBe(caps.CapEff);
    expect(caps.CapPrm).toBe(caps.CapEff);
    seen[rt.name].rootCaps = caps;
  });

  it('masks paths, keeps the rootfs and /proc/sys read-only and blocks unshare with the RuntimeDefault seccomp profile', async () => {
    const id = newId();
    const s = spec(id, {
      args: [
        'echo keys=$(cat /proc/keys | wc -c) firmware=$(ls -A /sys/firmware | wc -l);' +
          ' touch /newfile 2>/dev/null || echo rootfs-ro; echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo procsys-ro;' +
          ' echo tmp > /tmp/x 2>/dev/null || echo tmp-ro; unshare -n true 2>/dev/null; echo unshare=$?; echo mask-write=$(echo x > /proc/keys 2>&1 && echo ok)',
      ],
    });
    const { exitCode, output } = await run(id, s);
    expect(exitCode).toBe(0);
    expect(output).toContain('keys=0 firmware=0');
    expect(output).toContain('rootfs-ro');
    expect(output).toContain('procsys-ro');
    expect(output).toContain('tmp-ro');
    expect(output).toContain('unshare=1');
    seen[rt.name].confinement = output;
  });

  it('sets the memory and pids limits in the cgroup, visible inside and outside the container', async () => {
    const id = newId();
    const s = spec(id, { args: ['cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; sleep 1000'] });
    (s.linux.resources as Record<string, unknown>).pids = { limit: 20 };
    const c = await create(id, s);
    expect(c.code, c.output()).toBe(0);
    expect(fs.readFileSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}/${id}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(64 << 20));
    expect(fs.readFileSync(`/sys/fs/cgroup/pids${CGROUP_PARENT}/${id}/pids.max`, 'utf8').trim()).toBe('20');
    expect(fs.readFileSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}/${id}/cgroup.procs`, 'utf8').trim()).toBe(String(c.pid));
    expect(runtime('start', id).status).toBe(0);
    await until('output', () => (c.output().includes('20\n') ? true : undefined));
    expect(c.output()).toBe(`${64 << 20}\n20\n`);
    // The pids limit holds: 30 more processes cannot all start.
    const p = path.join(dir, `${id}-pids.json`);
    fs.writeFileSync(p, JSON.stringify({ ...s.process, args: ['sh', '-c', 'for i in $(seq 30); do sleep 2 >/dev/null 2>&1 & done 2>/dev/null; jobs -p | wc -l'] }));
    const exec = runtime('exec', '--process', p, id);
    expect(Number(exec.stdout.trim())).toBeLessThan(20);
    expect(runtime('kill', id, 'KILL').status).toBe(0);
    expect(await c.exit()).toBe(137);
  });

  it('goes created -> running -> stopped, and kill delivers a signal by name or number', async () => {
    const id = newId();
    const c = await create(id, spec(id, { args: ['trap "exit 42" TERM; echo ready; while true; do sleep 0.1; done'] }));
    expect(c.code, c.output()).toBe(0);
    const created = state(id);
    expect(created).toMatchObject({ id, status: 'created', pid: c.pid });
    expect(runtime('start', id).status).toBe(0);
    expect(state(id).status).toBe('running');
    await until('ready', () => (c.output().includes('ready') ? true : undefined));
    const again = runtime('start', id);
    expect(again.status).not.toBe(0);
    expect(runtime('kill', id, 'SIGTERM').status).toBe(0);
    expect(await c.exit()).toBe(42);
    await until('stopped', () => (state(id).status === 'stopped' ? true : undefined));
    const killStopped = runtime('kill', id, '9');
    expect(killStopped.status).not.toBe(0);
    expect(killStopped.stderr).toMatch(/not running/);
    expect(runtime('delete', id).status).toBe(0);
    expect(cgroupDirs(id)).toEqual([]);
    const gone = runtime('state', id);
    expect(gone.status).not.toBe(0);
    expect(gone.stderr).toMatch(/does not exist/);
  });

  it('refuses to delete a running container without --force, and reports an unknown one', async () => {
    const id = newId();
    const c = await create(id, spec(id, { args: ['sleep 1000'] }));
    expect(c.code).toBe(0);
    expect(runtime('start', id).status).toBe(0);
    const refused = runtime('delete', id);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/not stopped/);
    expect(state(id).status).toBe('running');
    const unknown = runtime('delete', `${id}-nope`);
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/container does not exist/);
    // A created (not started) container is deleted without --force.
    const id2 = newId();
    const c2 = await create(id2, spec(id2, { args: ['true'] }));
    expect(c2.code).toBe(0);
    expect(runtime('delete', id2).status).toBe(0);
    expect(alive(c2.pid)).toBe(false);
    expect(cgroupDirs(id2)).toEqual([]);
  });

  it('execs into a running container: its namespaces, cgroup, user and exit code', async () => {
    const id = newId();
    const s = spec(id, { args: ['echo $$ > /dev/shm/init; sleep 1000'] });
    const c = await create(id, s);
    expect(c.code).toBe(0);
    expect(runtime('start', id).status).toBe(0);
    const p = path.join(dir, `${id}-process.json`);
    fs.writeFileSync(
      p,
      JSON.stringify({
        ...s.process,
        user: { uid: 1000, gid: 1000, additionalGids: [10] },
        args: ['sh', '-c', 'echo "host=$(hostname) uid=$(id -u) groups=$(id -G) init=$(cat /dev/shm/init) cwd=$(pwd)"; grep CapEff /proc/self/status; exit 5'],
        cwd: '/tmp',
      }),
    );
    await until('init', () => (c.output() === '' && state(id).status === 'running' ? true : undefined));
    const exec = runtime('exec', '--process', p, id);
    expect(exec.status, exec.stderr).toBe(5);
    expect(exec.stdout).toContain('host=box uid=1000 groups=1000 10 init=1 cwd=/tmp');
    expect(exec.stdout).toMatch(/CapEff:\s+0000000000000000/);
    seen[rt.name].exec = exec.stdout;
    // Signals sent to exec are forwarded to the process.
    fs.writeFileSync(p, JSON.stringify({ ...s.process, args: ['sh', '-c', 'trap "exit 33" TERM; echo trapped; while :; do sleep 0.1; done'] }));
    const forwarded = spawn(rt.bin, ['--root', root, 'exec', '--process', p, id], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => forwarded.stdout.once('data', () => resolve()));
    forwarded.kill('SIGTERM');
    expect(await new Promise((resolve) => forwarded.once('exit', (code) => resolve(code)))).toBe(33);
    // Killed by a signal: 128 + signal, as a shell reports it.
    fs.writeFileSync(p, JSON.stringify({ ...s.process, args: ['sh', '-c', 'kill -9 $$'] }));
    expect(runtime('exec', '--process', p, id).status).toBe(137);
    // The seccomp profile of the container applies to exec'd processes too.
    fs.writeFileSync(p, JSON.stringify({ ...s.process, args: ['unshare', '-n', 'true'] }));
    expect(runtime('exec', '--process', p, id).status).toBe(1);
    // Detached, with a pid file: the process is in the container's cgroup.
    const pidFile = path.join(dir, `${id}-exec.pid`);
    fs.writeFileSync(p, JSON.stringify({ ...s.process, args: ['sleep', '1000'] }));
    const detached = spawnSync(rt.bin, ['--root', root, 'exec', '--detach', '--pid-file', pidFile, '--process', p, id], { stdio: 'ignore' });
    expect(detached.status).toBe(0);
    const execPid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(alive(execPid)).toBe(true);
    expect(fs.readFileSync(`/sys/fs/cgroup/pids${CGROUP_PARENT}/${id}/cgroup.procs`, 'utf8').split('\n')).toContain(String(execPid));
    expect(fs.readlinkSync(`/proc/${execPid}/ns/pid`)).toBe(fs.readlinkSync(`/proc/${c.pid}/ns/pid`));
    expect(fs.readlinkSync(`/proc/${execPid}/ns/mnt`)).toBe(fs.readlinkSync(`/proc/${c.pid}/ns/mnt`));
    expect(fs.readlinkSync(`/proc/${execPid}/ns/net`)).toBe(fs.readlinkSync(`/proc/${c.pid}/ns/net`));
    // A missing binary fails the exec itself.
    fs.writeFileSync(p, JSON.stringify({ ...s.process, args: ['/nonexistent'] }));
    const missing = runtime('exec', '--process', p, id);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/nonexistent/);
  });

  it('updates the memory and pids limits of a running container', async () => {
    const id = newId();
    const c = await create(id, spec(id, { args: ['sleep 1000'] }));
    expect(c.code).toBe(0);
    expect(runtime('start', id).status).toBe(0);
    const r = path.join(dir, `${id}-resources.json`);
    fs.writeFileSync(r, JSON.stringify({ memory: { limit: 128 << 20 }, pids: { limit: 99 }, cpu: { shares: 512, quota: 50000, period: 100000 } }));
    const update = runtime('update', '--resources', r, id);
    expect(update.status, update.stderr).toBe(0);
    expect(fs.readFileSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}/${id}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(128 << 20));
    expect(fs.readFileSync(`/sys/fs/cgroup/pids${CGROUP_PARENT}/${id}/pids.max`, 'utf8').trim()).toBe('99');
    expect(fs.readFileSync(`/sys/fs/cgroup/cpu${CGROUP_PARENT}/${id}/cpu.shares`, 'utf8').trim()).toBe('512');
    expect(fs.readFileSync(`/sys/fs/cgroup/cpu${CGROUP_PARENT}/${id}/cpu.cfs_quota_us`, 'utf8').trim()).toBe('50000');
  });

  it('delete --force kills every process of a running container and leaves no cgroup behind', async () => {
    const id = newId();
    const s = spec(id, { args: ['sleep 1000 & sleep 1000'], pidNamespace: 'node' });
    const c = await create(id, s);
    expect(c.code).toBe(0);
    expect(runtime('start', id).status).toBe(0);
    const p = path.join(dir, `${id}-process.json`);
    const pidFile = path.join(dir, `${id}-exec.pid`);
    fs.writeFileSync(p, JSON.stringify({ ...s.process, args: ['sleep', '1000'] }));
    expect(spawnSync(rt.bin, ['--root', root, 'exec', '-d', '--pid-file', pidFile, '--process', p, id], { stdio: 'ignore' }).status).toBe(0);
    const execPid = Number(fs.readFileSync(pidFile, 'utf8'));
    const procs = await until('processes', () => {
      const list = fs.readFileSync(`/sys/fs/cgroup/pids${CGROUP_PARENT}/${id}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
      return list.length >= 3 ? list : undefined;
    });
    expect(procs).toContain(execPid);
    const del = runtime('delete', '--force', id);
    expect(del.status, del.stderr).toBe(0);
    expect(cgroupDirs(id)).toEqual([]);
    for (const pid of procs) expect(alive(pid)).toBe(false);
    expect(await c.exit()).toBe(137);
    expect(fs.existsSync(path.join(root, id))).toBe(false);
  });

  it('a create that fails (missing binary, bad mount, an rlimit or oom_score_adj the host refuses) reports why and leaves nothing behind', async () => {
    const cases: Array<[string, (s: OciSpec) => void, RegExp]> = [
      ['missing binary', (s) => (s.process.args = ['/nonexistent/binary']), /nonexistent/],
      ['bad mount', (s) => s.mounts.push({ destination: '/data', type: 'bind', source: path.join(dir, 'no-such-dir'), options: ['rbind', 'ro'] }), /no-such-dir|no such file/i],
      // Without CAP_SYS_RESOURCE in the host's bounding set these cannot be granted: create fails, as runc's does.
      ...(noSysResource
        ? ([
            ['rlimit above the hard limit', (s: OciSpec) => (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: hardNofile * 2, hard: hardNofile * 2 }]), /rlimit/i],
            ['oom_score_adj below the current one', (s: OciSpec) => (s.process.oomScoreAdj = -1000), /oom_score_adj|unable to start/],
          ] as Array<[string, (s: OciSpec) => void, RegExp]>)
        : []),
    ];
    for (const [what, change, message] of cases) {
      const id = newId();
      const s = spec(id, {});
      change(s);
      const c = await create(id, s);
      expect(c.code, what).not.toBe(0);
      expect(c.output(), what).toMatch(message);
      expect(c.log(), what).toMatch(/"level":"error"/);
      expect(cgroupDirs(id), what).toEqual([]);
      expect(fs.existsSync(path.join(root, id)), what).toBe(false);
      const st = runtime('state', id);
      expect(st.stderr, what).toMatch(/does not exist/);
    }
  });

  // berth-runtime's own rule (runc's rollback is runc's business): defined for it alone, not skipped for runc.
  if (rt.name === 'berth-runtime') it('a failed create leaves a cgroup that was there before it alone', async () => {
    const id = newId();
    // Someone else's cgroup at the container's path, in every hierarchy: the rollback must not remove it.
    const hierarchies = fs.readdirSync('/sys/fs/cgroup').filter((h) => !fs.lstatSync(path.join('/sys/fs/cgroup', h)).isSymbolicLink());
    for (const h of hierarchies) fs.mkdirSync(path.join('/sys/fs/cgroup', h, CGROUP_PARENT, id), { recursive: true });
    const theirs = cgroupDirs(id);
    expect(theirs.length).toBeGreaterThanOrEqual(hierarchies.length);
    try {
      const s = spec(id, {});
      s.mounts.push({ destination: '/data', type: 'bind', source: path.join(dir, 'no-such-dir'), options: ['rbind', 'ro'] });
      const c = await create(id, s);
      expect(c.code).not.toBe(0);
      expect(cgroupDirs(id)).toEqual(theirs);
    } finally {
      for (const d of cgroupDirs(id)) fs.rmdirSync(d);
    }
  });

  if (rt.name === 'berth-runtime') it('a failed create removes the cgroup where it made it, and leaves it where it was there before', async () => {
    const id = newId();
    const hierarchies = fs.readdirSync('/sys/fs/cgroup').filter((h) => !fs.lstatSync(path.join('/sys/fs/cgroup', h)).isSymbolicLink());
    // Someone else's cgroup at the container's path in one hierarchy only.
    const theirs = path.join('/sys/fs/cgroup', hierarchies[0], CGROUP_PARENT, id);
    fs.mkdirSync(theirs, { recursive: true });
    try {
      const s = spec(id, {});
      s.mounts.push({ destination: '/data', type: 'bind', source: path.join(dir, 'no-such-dir'), options: ['rbind', 'ro'] });
      const c = await create(id, s);
      expect(c.code).not.toBe(0);
      expect(cgroupDirs(id)).toEqual([theirs]);
    } finally {
      for (const d of cgroupDirs(id)) fs.rmdirSync(d);
    }
  });

  it('applies rlimits, oom_score_adj, sysctls and bind mounts with their options', async () => {
    const id = newId();
    const data = path.join(dir, `${id}-data`);
    const rw = path.join(dir, `${id}-rw`);
    fs.mkdirSync(data);
    fs.mkdirSync(rw);
    fs.writeFileSync(path.join(data, 'f'), 'from-host');
    const s = spec(id, {
      args: [
        'echo nofile=$(ulimit -n)/$(ulimit -Hn) oom=$(cat /proc/self/oom_score_adj) fwd=$(cat /proc/sys/net/ipv4/ip_forward) data=$(cat /data/f);' +
          ' touch /data/x 2>/dev/null || echo data-ro; echo written > /rw/out',
      ],
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 256, hard: 512 }],
      oomScoreAdj: 500,
      sysctls: { 'net.ipv4.ip_forward': '1' },
      mounts: [
        { containerPath: '/data', hostPath: data, readonly: true, propagation: 'private' },
        { containerPath: '/rw', hostPath: rw, readonly: false, propagation: 'private' },
      ],
    });
    const { exitCode, output } = await run(id, s);
    expect(exitCode).toBe(0);
    expect(output).toContain('nofile=256/512 oom=500 fwd=1 data=from-host');
    expect(output).toContain('data-ro');
    expect(fs.readFileSync(path.join(rw, 'out'), 'utf8')).toBe('written\n');
    seen[rt.name].settings = output;
  });

  it('applies seccomp argument conditions and ambient capabilities', async () => {
    const id = newId();
    const s = spec(
      id,
      { args: ['grep -E "^Cap(Eff|Amb)" /proc/self/status; unshare -n true 2>/dev/null; echo net=$?; unshare -u true 2>/dev/null; echo uts=$?'] },
      { uid: 1000, gid: 1000, additionalGids: [], home: '/home/berth' },
    );
    const caps = ['CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN'];
    s.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps };
    // unshare is refused only when its flags hold CLONE_NEWNET.
    s.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: 0x40000000, valueTwo: 0x40000000, op: 'SCMP_CMP_MASKED_EQ' }] }],
    };
    const { exitCode, output } = await run(id, s);
    expect(exitCode).toBe(0);
    expect(output).toMatch(/^CapEff:\s+0000000000200400$/m);
    expect(output).toMatch(/^CapAmb:\s+0000000000200400$/m);
    expect(output).toContain('net=1\nuts=0');
    seen[rt.name].seccompArgs = output;
  });

  it.runIf(fs.existsSync(PINNS))('joins namespaces given by path', async () => {
    const id = newId();
    const pins = path.join(dir, `${id}-ns`);
    const pinned = spawnSync(PINNS, ['--dir', pins, '--id', 'pod', '--net', '--ipc', '--uts'], { encoding: 'utf8' });
    expect(pinned.status, pinned.stderr).toBe(0);
    try {
      const s = spec(id, { args: ['sleep 1000'] });
      s.linux.namespaces = [
        { type: 'mount' },
        { type: 'pid' },
        { type: 'network', path: path.join(pins, 'net', 'pod') },
        { type: 'ipc', path: path.join(pins, 'ipc', 'pod') },
        { type: 'uts', path: path.join(pins, 'uts', 'pod') },
      ];
      const c = await create(id, s);
      expect(c.code, c.output()).toBe(0);
      for (const ns of ['net', 'ipc', 'uts']) {
        expect(fs.readlinkSync(`/proc/${c.pid}/ns/${ns}`)).toBe(`${ns}:[${fs.statSync(path.join(pins, ns, 'pod')).ino}]`);
      }
      expect(fs.readlinkSync(`/proc/${c.pid}/ns/mnt`)).not.toBe(fs.readlinkSync('/proc/self/ns/mnt'));
    } finally {
      for (const ns of ['net', 'ipc', 'uts']) spawnSync('umount', [path.join(pins, ns, 'pod')]);
    }
  });

  it('kill --all signals every process of a container that shares the host pid namespace', async () => {
    const id = newId();
    const c = await create(id, spec(id, { args: ['sleep 1000 & sleep 1000 & wait'], pidNamespace: 'node' }));
    expect(c.code).toBe(0);
    expect(runtime('start', id).status).toBe(0);
    const procs = await until('processes', () => {
      const list = fs.readFileSync(`/sys/fs/cgroup/pids${CGROUP_PARENT}/${id}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
      return list.length >= 3 ? list : undefined;
    });
    const killed = runtime('kill', '--all', id, 'KILL');
    expect(killed.status, killed.stderr).toBe(0);
    expect(await c.exit()).toBe(137);
    await until('all dead', () => (procs.every((pid) => !alive(pid)) ? true : undefined));
  });

  it('runs with --no-pivot (the rootfs moved onto / and chrooted)', async () => {
    const id = newId();
    const c = await create(id, spec(id, { args: ['ls /; exit 4'] }), ['--no-pivot']);
    expect(c.code, c.output()).toBe(0);
    expect(runtime('start', id).status).toBe(0);
    expect(await c.exit()).toBe(4);
    expect(c.output()).toMatch(/^bin$/m);
    expect(c.output()).toMatch(/^tmp$/m);
  });

  // On cgroup v2 the device rules are an eBPF program on the container's cgroup (berth-runtime also adds it to
  // the unified hierarchy of a hybrid host, where runc relies on the v1 devices controller alone). A process
  // put in that cgroup of the unified hierarchy only is held by the program alone.
  const unifiedRoot = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
  const v2Only = unifiedRoot === '/sys/fs/cgroup';
  it.runIf(fs.existsSync(unifiedRoot) && (v2Only || rt.name === 'berth-runtime'))('enforces the device rules with a cgroup v2 device filter', async () => {
    const id = newId();
    const c = await create(id, spec(id, { args: ['sleep 1000'] }));
    expect(c.code, c.log()).toBe(0);
    expect(c.log()).not.toMatch(/device filter/);
    const probe = spawnSync(
      'sh',
      ['-c', `echo $$ > ${unifiedRoot}${CGROUP_PARENT}/${id}/cgroup.procs || exit 9; head -c 1 /dev/zero | wc -c; head -c 1 /dev/kmsg >/dev/null 2>&1 || echo kmsg-denied`],
      { encoding: 'utf8' },
    );
    expect(probe.status, probe.stderr).toBe(0);
    expect(probe.stdout).toBe('1\nkmsg-denied\n');
  });

  it('gives a terminal through --console-socket', async () => {
    const id = newId();
    const sock = path.join(dir, `${id}.sock`);
    const out = path.join(dir, `${id}.console`);
    const receiver = spawn('python3', [path.join(dir, 'console.py'), sock, out], { stdio: 'ignore' });
    helpers.push(receiver);
    await until('console socket', () => (fs.existsSync(`${out}.ready`) ? true : undefined));
    const c = await create(id, spec(id, { args: ['test -t 0 && test -t 1 && echo has-tty; tty; exit 3'], tty: true }), ['--console-socket', sock]);
    expect(c.code, c.output()).toBe(0);
    expect(runtime('start', id).status).toBe(0);
    expect(await c.exit()).toBe(3);
    const text = await until('console output', () => {
      const t = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
      return t.includes('/dev/') ? t : undefined;
    });
    expect(text).toMatch(/has-tty\r?\n\/dev\/(pts\/\d+|console)/);
  });

  it('execs a detached process with a terminal through --console-socket', async () => {
    const id = newId();
    const s = spec(id, { args: ['sleep 1000'] });
    const c = await create(id, s);
    expect(c.code, c.output()).toBe(0);
    expect(runtime('start', id).status).toBe(0);
    const sock = path.join(dir, `${id}.sock`);
    const out = path.join(dir, `${id}.console`);
    const receiver = spawn('python3', [path.join(dir, 'console.py'), sock, out], { stdio: 'ignore' });
    helpers.push(receiver);
    await until('console socket', () => (fs.existsSync(`${out}.ready`) ? true : undefined));
    const p = path.join(dir, `${id}-process.json`);
    fs.writeFileSync(p, JSON.stringify({ ...s.process, terminal: true, args: ['sh', '-c', 'test -t 0 && echo exec-has-tty'] }));
    const exec = runtime('exec', '--detach', '--tty', '--console-socket', sock, '--process', p, id);
    expect(exec.status, exec.stderr).toBe(0);
    const text = await until('console output', () => {
      const t = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
      return t.includes('exec-has-tty') ? t : undefined;
    });
    expect(text).toMatch(/exec-has-tty/);
  });
});

describe('berth-runtime and runc', () => {
  it('printed the same things', () => {
    expect(seen['berth-runtime']).toEqual(seen.runc);
  });
});
