// The node VM: a Debian 12 root with systemd as PID 1 on pure cgroup v2 (hack/node-vm/build-image.sh,
// cached under /var/cache/berth/node-vm), booted by qemu under TCG with a throw-away qcow2 overlay, and
// berth installed into it from its Debian package (hack/bundle-tree.sh, hack/deb.sh: built from this
// checkout) on a second disk, running as berth.service. The disk also holds a newer package (the same build
// as the next version) and the bundle's tree, for the upgrade and install tests. The host reaches the guest only through
// forwards bound to 127.0.0.1: ssh (port 22) and the CRI (a test-only systemd-socket-proxyd on guest port
// 10010 in front of /run/berth/berth.sock). The guest reaches nothing but, optionally, one registry on the
// host's loopback, which it sees as GUEST_REGISTRY_HOST. See docs/node-vm.md.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { busyboxImage } from '../../hack/images/busybox';
import { connectCri, type CriClient } from '../../src/client/cri-client';
import { packageJson, packageRoot } from '../../src/util/package-root';
import { pushImage } from './oci/push';
import { freePort } from './ports';
import { startRegistry, type TestRegistry } from './registry';

/** How the guest names the host registry given as `registryPort` (plain HTTP; berth.toml marks it insecure). */
export const GUEST_REGISTRY_HOST = '10.0.2.100:5000';
/** The guest port of the test-only CRI proxy. */
const GUEST_CRI_PORT = 10010;

export interface NodeVmOptions {
  /** A registry on the host's 127.0.0.1 to expose to the guest as GUEST_REGISTRY_HOST. */
  registryPort?: number;
  cpus?: number;
  memoryMiB?: number;
  /** TOML appended to the guest's /etc/berth/berth.toml (which already marks GUEST_REGISTRY_HOST insecure). */
  berthConfig?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SshOptions {
  /** Written to the command's stdin. */
  input?: string | Buffer;
  /** Kills the ssh client after this long (default 120 s) and rejects. */
  timeoutMs?: number;
}

export interface NodeVmTimings {
  /** Building the root (or finding it in the cache). */
  imageMs: number;
  /** Staging berth and making the per-boot disks. */
  stageMs: number;
  /** qemu start to sshd answering. */
  sshMs: number;
  /** qemu start to berth.service installed and the CRI answering Version. */
  readyMs: number;
}

export interface NodeVm {
  /** A CRI client for berthd in the guest (through 127.0.0.1:<port>). */
  cri: CriClient;
  /** The CRI endpoint on the host: 127.0.0.1:PORT. */
  criEndpoint: string;
  /** The per-boot directory: overlay.qcow2, berth.img, console.log (the serial console), qemu.log. */
  dir: string;
  consoleLog: string;
  qemuPid: number;
  timings: NodeVmTimings;
  /** berth's Debian packages on the guest's staged disk: the one installed at boot, and a newer one. */
  debs: { installed: GuestPackage; newer: GuestPackage };
  /** Runs a shell command as root in the guest. */
  ssh(cmd: string, opts?: SshOptions): Promise<SshResult>;
  /** As ssh, but throws (with stderr) unless the command exits 0; resolves to its stdout. */
  sshOk(cmd: string, opts?: SshOptions): Promise<string>;
  /** berth.service's main PID. */
  berthdPid(): Promise<number>;
  /** `systemctl restart berth`, then waits for a new berthd to answer Version over the CRI. */
  restartBerth(): Promise<void>;
  /** Waits until the CRI answers Version (berthd ready). */
  waitCri(ms?: number): Promise<void>;
  /** Powers the guest off (killing qemu by its PID if it has not stopped in time) and removes `dir`. */
  stop(): Promise<void>;
}

export interface GuestPackage {
  version: string;
  /** Its path in the guest. */
  path: string;
}

const root = packageRoot();

/**
 * Packages this checkout's build twice (hack/bundle-tree.sh, hack/deb.sh --fast) into `dest`: as its
 * own version, and as the next patch version (the same build, its helpers recompiled to report it) for
 * the upgrade tests. The first's bundle tree is left in dest/opt/berth.
 */
async function buildPackages(work: string, dest: string): Promise<{ installed: { version: string; path: string }; newer: { version: string; path: string } }> {
  const version = packageJson().version;
  const [major, minor, patch] = version.split(/[.+-]/).map(Number);
  const newer = `${major}.${minor}.${patch + 1}`;
  fs.mkdirSync(dest, { recursive: true });
  const build = async (v: string) => {
    const args = v === version ? [work] : ['--version', v, work];
    const tree = (await runOk('bash', [path.join(root, 'hack/bundle-tree.sh'), ...args], { timeoutMs: 180_000 })).trim().split('\n').pop()!;
    const deb = (await runOk('bash', [path.join(root, 'hack/deb.sh'), '--fast', tree, dest], { timeoutMs: 180_000 })).trim().split(' ')[0];
    return { version: v, path: deb, tree };
  };
  const installed = await build(version);
  const upgrade = await build(newer);
  fs.rmSync(upgrade.tree, { recursive: true, force: true });
  // The release bundle's tree, as an operator unpacks it into /opt/berth.
  fs.mkdirSync(path.join(dest, 'opt'));
  fs.renameSync(installed.tree, path.join(dest, 'opt', 'berth'));
  return { installed, newer: upgrade };
}
const live = new Set<ChildProcess>();
let exitHook = false;

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Runs a program to its end; rejects on a non-zero exit with the end of its output. */
function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string | Buffer } = {}): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`${cmd} ${args.slice(-1)[0]}: timed out after ${opts.timeoutMs} ms`));
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

/**
 * Opens an ssh master (-f: it goes to the background once authenticated) and resolves to the foreground
 * process's exit code. Its stdio is a file, never a pipe: the backgrounded master would hold a pipe open.
 */
function openMaster(args: string[], logFile: string): Promise<number> {
  return new Promise((resolve) => {
    const fd = fs.openSync(logFile, 'a');
    const child = spawn('ssh', args, { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', () => resolve(255));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code ?? 255);
    });
  });
}

async function runOk(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${(r.stderr || r.stdout).slice(-4000)}`);
  return r.stdout;
}

/** Builds the node VM's root if the cache lacks it (about 80 s on 2 cores) and returns the cache directory. */
export async function buildNodeVmImage(): Promise<string> {
  const out = await runOk('bash', [path.join(root, 'hack/node-vm/build-image.sh')], { timeoutMs: 900_000 });
  const dir = out.trim().split('\n').pop()!;
  for (const f of ['rootfs.img', 'vmlinuz', 'initrd.img', 'id_ed25519']) {
    if (!fs.existsSync(path.join(dir, f))) throw new Error(`node VM cache ${dir} lacks ${f}`);
  }
  return dir;
}

/** The setup the guest runs at boot from the staged disk (node-vm-stage.service in the image). */
function setupScript(berthToml: string, deb: string): string {
  return `#!/bin/sh
# Run by node-vm-stage.service from /mnt/stage (this disk, read-only): installs berth as an operator does,
# from its Debian package, with the operator's configuration written first (and kept: --force-confold).
set -eu
mkdir -p /etc/berth
cat > /etc/berth/berth.toml <<'TOML'
${berthToml}
TOML
# Test-only: the CRI socket on TCP port ${GUEST_CRI_PORT}, for the host's forward.
cat > /etc/systemd/system/berth-cri-proxy.socket <<'UNIT'
[Unit]
Description=node VM test: the CRI socket on TCP ${GUEST_CRI_PORT}
[Socket]
ListenStream=${GUEST_CRI_PORT}
[Install]
WantedBy=sockets.target
UNIT
cat > /etc/systemd/system/berth-cri-proxy.service <<'UNIT'
[Unit]
Description=node VM test: proxy TCP ${GUEST_CRI_PORT} to /run/berth/berth.sock
Requires=berth-cri-proxy.socket
After=berth-cri-proxy.socket
[Service]
ExecStart=/lib/systemd/systemd-socket-proxyd /run/berth/berth.sock
UNIT
dpkg --force-confold -i /mnt/stage/${deb}
systemctl enable --now berth-cri-proxy.socket
`;
}

/** Per-connection forwarder for qemu's guestfwd (cmd:): stdin/stdout to a host TCP port. */
const FORWARDER = `const s = require('net').connect(+process.argv[3], process.argv[2]);
process.stdin.pipe(s); s.pipe(process.stdout);
s.on('error', () => process.exit(1)); s.on('close', () => process.exit(0));
`;

/** Removes the per-boot dirs of earlier runs whose qemu is gone (a test process killed before its stop()). */
function sweepStaleDirs(): void {
  if (process.env.BERTH_NODE_VM_KEEP) return;
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith('berth-node-vm-')) continue;
    const dir = path.join(os.tmpdir(), name);
    let pid: number;
    try {
      pid = Number(fs.readFileSync(path.join(dir, 'qemu.pid'), 'utf8'));
    } catch {
      continue; // still being set up, or not ours
    }
    try {
      process.kill(pid, 0);
      continue; // its qemu still runs
    } catch {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

export async function startNodeVm(opts: NodeVmOptions = {}): Promise<NodeVm> {
  const log = opts.log ?? (() => {});
  sweepStaleDirs();
  const t0 = Date.now();
  const cache = await buildNodeVmImage();
  const imageMs = Date.now() - t0;
  log(`node VM image ${cache} (${imageMs} ms)`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-node-vm-'));
  const consoleLog = path.join(dir, 'console.log');
  const key = path.join(cache, 'id_ed25519');
  const t1 = Date.now();
  const stage = path.join(dir, 'stage');
  const debs = await buildPackages(path.join(dir, 'pkg'), stage);
  const toml = `[image.registries."${GUEST_REGISTRY_HOST}"]\ninsecure = true\n${opts.berthConfig ?? ''}`;
  fs.writeFileSync(path.join(stage, 'setup.sh'), setupScript(toml, path.basename(debs.installed.path)), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'forward.js'), FORWARDER);
  const stageMb = Number((await runOk('du', ['-sm', stage])).split('\t')[0]);
  await runOk('mkfs.ext4', ['-q', '-F', '-L', 'berth-stage', '-d', stage, path.join(dir, 'berth.img'), `${stageMb * 2 + 64}M`]);
  fs.rmSync(stage, { recursive: true, force: true });
  await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.join(cache, 'rootfs.img'), '-F', 'raw', path.join(dir, 'overlay.qcow2')]);
  const stageMs = Date.now() - t1;

  const sshPort = await freePort();
  const criPort = await freePort();
  const fwds = [`hostfwd=tcp:127.0.0.1:${sshPort}-:22`, `hostfwd=tcp:127.0.0.1:${criPort}-:${GUEST_CRI_PORT}`];
  if (opts.registryPort) {
    const [gip, gport] = GUEST_REGISTRY_HOST.split(':');
    fwds.push(`guestfwd=tcp:${gip}:${gport}-cmd:${process.execPath} ${path.join(dir, 'forward.js')} 127.0.0.1 ${opts.registryPort}`);
  }
  // prettier-ignore
  const args = [
    '-nodefaults', '-display', 'none', '-no-reboot',
    '-accel', 'tcg,thread=multi', '-smp', String(opts.cpus ?? 2), '-m', String(opts.memoryMiB ?? 2048),
    '-kernel', path.join(cache, 'vmlinuz'), '-initrd', path.join(cache, 'initrd.img'),
    '-append', 'root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 panic=-1',
    '-drive', `file=${path.join(dir, 'overlay.qcow2')},if=virtio,format=qcow2`,
    '-drive', `file=${path.join(dir, 'berth.img')},if=virtio,format=raw,readonly=on`,
    '-netdev', `user,id=n0,restrict=on,${fwds.join(',')}`, '-device', 'virtio-net-pci,netdev=n0',
    '-device', 'virtio-rng-pci',
    '-serial', `file:${consoleLog}`, '-monitor', 'none',
  ];
  const qemuLog = fs.openSync(path.join(dir, 'qemu.log'), 'w');
  const tBoot = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', qemuLog, qemuLog] });
  fs.closeSync(qemuLog);
  fs.writeFileSync(path.join(dir, 'qemu.pid'), String(qemu.pid));
  live.add(qemu);
  if (!exitHook) {
    exitHook = true;
    // A test process that dies without stop() must not leave its guests running.
    process.on('exit', () => {
      for (const q of live) if (q.exitCode === null && q.signalCode === null) q.kill('SIGKILL');
    });
  }
  // Should this process be killed outright (no 'exit' handler runs), a watchdog kills its qemu; it ends with qemu.
  const watchdog = spawn(
    'sh',
    ['-c', `while kill -0 ${qemu.pid} 2>/dev/null; do kill -0 ${process.pid} 2>/dev/null || { kill -9 ${qemu.pid}; exit 0; }; sleep 2; done`],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  let exited = false;
  qemu.on('exit', () => {
    exited = true;
    live.delete(qemu);
  });
  log(`qemu pid ${qemu.pid}, ssh 127.0.0.1:${sshPort}, CRI 127.0.0.1:${criPort}, dir ${dir}`);

  const controlPath = path.join(dir, 'ssh.sock');
  // prettier-ignore
  const sshBase = [
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10', '-o', `ControlPath=${controlPath}`, '-i', key, '-p', String(sshPort),
  ];
  const ssh = (cmd: string, o: SshOptions = {}) =>
    run('ssh', [...sshBase, '-o', 'ControlMaster=no', 'root@127.0.0.1', cmd], { timeoutMs: o.timeoutMs ?? 120_000, input: o.input });
  const sshOk = async (cmd: string, o: SshOptions = {}) => {
    const r = await ssh(cmd, o);
    if (r.code !== 0) throw new Error(`guest: ${cmd}: exit ${r.code}\n${r.stderr.slice(-4000)}${r.stdout.slice(-2000)}`);
    return r.stdout;
  };

  const criEndpoint = `127.0.0.1:${criPort}`;
  // berthd restarts and boots make the proxy drop connections: reconnect quickly rather than back off.
  const cri = connectCri(criEndpoint, { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 });

  const waitCri = async (ms = 120_000) => {
    const deadline = Date.now() + ms;
    let last: unknown;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`qemu exited:\n${tail(path.join(dir, 'qemu.log'))}\n${tail(consoleLog)}`);
      try {
        await cri.runtime.Version({ version: 'v1' }, { timeoutMs: 5_000 });
        return;
      } catch (err) {
        last = err;
        await sleep(250);
      }
    }
    throw new Error(`the guest's CRI did not answer within ${ms} ms: ${(last as Error)?.message}`);
  };

  const berthdPid = async () => Number((await sshOk('systemctl show -p MainPID --value berth')).trim());

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    cri.close();
    if (!exited) {
      // poweroff drops the connection: its result does not matter, qemu's exit does.
      await ssh('systemctl poweroff --no-block', { timeoutMs: 15_000 }).catch(() => undefined);
      const deadline = Date.now() + 30_000;
      while (!exited && Date.now() < deadline) await sleep(200);
      if (!exited) {
        qemu.kill('SIGKILL');
        while (!exited) await sleep(50);
      }
    }
    await run('ssh', [...sshBase, '-O', 'exit', 'root@127.0.0.1'], { timeoutMs: 5_000 }).catch(() => undefined);
    if (!process.env.BERTH_NODE_VM_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    // ssh: a master connection the commands share (ControlPath), opened as soon as sshd answers.
    const sshDeadline = Date.now() + 240_000;
    for (;;) {
      if (exited) throw new Error(`qemu exited:\n${tail(path.join(dir, 'qemu.log'))}\n${tail(consoleLog)}`);
      // prettier-ignore
      const code = await openMaster([...sshBase, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=12', '-f', '-N', 'root@127.0.0.1'], path.join(dir, 'ssh-master.log'));
      if (code === 0) break;
      if (Date.now() > sshDeadline) throw new Error(`sshd in the guest did not answer: ${tail(path.join(dir, 'ssh-master.log'), 5)}\n${tail(consoleLog)}`);
      await sleep(1000);
    }
    const sshMs = Date.now() - tBoot;
    log(`ssh up after ${sshMs} ms`);
    // The staged disk's setup (berth installed and started) runs at boot; `start` joins or re-reads its job.
    const setup = await ssh('systemctl start node-vm-stage.service', { timeoutMs: 300_000 });
    if (setup.code !== 0) {
      const journal = await ssh('journalctl -q -o cat -u node-vm-stage -u berth -n 60');
      throw new Error(`berth's installation in the guest failed:\n${setup.stderr}\n${journal.stdout}`);
    }
    await waitCri();
    const readyMs = Date.now() - tBoot;
    log(`berth ready after ${readyMs} ms`);
    return {
      cri,
      criEndpoint,
      dir,
      consoleLog,
      qemuPid: qemu.pid!,
      timings: { imageMs, stageMs, sshMs, readyMs },
      debs: {
        installed: { version: debs.installed.version, path: `/mnt/stage/${path.basename(debs.installed.path)}` },
        newer: { version: debs.newer.version, path: `/mnt/stage/${path.basename(debs.newer.path)}` },
      },
      ssh,
      sshOk,
      berthdPid,
      waitCri,
      async restartBerth() {
        const before = await berthdPid();
        await sshOk('systemctl restart berth');
        const after = await berthdPid();
        if (!after || after === before) throw new Error(`berth.service did not restart (main PID ${before} → ${after})`);
        await waitCri();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface NodeVmWithRegistry {
  vm: NodeVm;
  registry: TestRegistry;
  /** The busybox test image as the guest names it (already pulled by the guest's berthd). */
  image: string;
  stop(): Promise<void>;
}

/** A host loopback registry holding the busybox test image, a node VM that sees it, and the image pulled. */
export async function startNodeVmWithRegistry(opts: Omit<NodeVmOptions, 'registryPort'> = {}): Promise<NodeVmWithRegistry> {
  const registry = await startRegistry();
  let vm: NodeVm | undefined;
  try {
    await pushImage({ host: registry.host, repository: 'busybox' }, busyboxImage(), ['latest']);
    vm = await startNodeVm({ ...opts, registryPort: Number(registry.host.split(':')[1]) });
    const image = `${GUEST_REGISTRY_HOST}/busybox:latest`;
    await vm.cri.image.PullImage({ image: { image } }, { timeoutMs: 120_000 });
    const started = vm;
    return {
      vm,
      registry,
      image,
      async stop() {
        await started.stop();
        await registry.stop();
      },
    };
  } catch (err) {
    await vm?.stop();
    await registry.stop();
    throw err;
  }
}
