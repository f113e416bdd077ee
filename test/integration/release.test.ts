// The release bundle and the Debian package (issue 21): hack/release.sh builds
// berth-<version>-linux-amd64.tar.gz from a clean checkout of HEAD; built twice it is the same bytes, it
// holds no path of the machine that built it, its SHA256SUMS match its files, and the berthd in it runs on
// the node in it: `version` names the commit and the pinned Node, and it serves the CRI. hack/deb.sh makes
// berth_<version>_amd64.deb of it, which lintian passes at warning level and which installs, upgrades
// (an operator's edit of a conffile kept), removes and purges as Debian's tools expect.
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCri } from '../../src/client/cri-client';
import { packageJson, packageRoot } from '../../src/util/package-root';
import { until } from '../support/until';

const repo = packageRoot();
const version = packageJson().version;
const name = `berth-${version}`;

describe('release bundle', { timeout: 600_000 }, () => {
  let dir: string;
  let work: string;
  const tarball = (n: number) => path.join(dir, `out${n}`, `${name}-linux-amd64.tar.gz`);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-release-test-'));
    // The same build directory for both builds (its path is mapped out of the binaries).
    work = path.join(dir, 'work');
    // Asynchronously: a build takes a minute or two, and a blocked event loop would cut vitest's RPC.
    for (const n of [1, 2]) {
      const { stdout } = await promisify(execFile)('bash', [path.join(repo, 'hack/release.sh'), path.join(dir, `out${n}`)], {
        env: { ...process.env, BERTH_RELEASE_WORK: work },
        encoding: 'utf8',
        maxBuffer: 16 << 20,
      });
      console.log(`[release] build ${n}: ${stdout.trim().split('\n').pop()}`);
    }
    execFileSync('tar', ['-xzf', tarball(1), '-C', dir]);
  }, 900_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is the same bytes when built twice from the same commit', () => {
    expect(fs.readFileSync(tarball(1)).equals(fs.readFileSync(tarball(2)))).toBe(true);
  });

  it("holds no path of the machine that built it, and its SHA256SUMS match its files", () => {
    const root = path.join(dir, name);
    for (const hostPath of [work, repo]) {
      const found = execFileSync('bash', ['-c', 'grep -rlF -- "$1" . || true', 'grep', hostPath], { cwd: root, encoding: 'utf8' }).trim();
      expect(found, `files holding ${hostPath}`).toBe('');
    }
    expect(execFileSync('sha256sum', ['--quiet', '-c', 'SHA256SUMS'], { cwd: root, encoding: 'utf8' })).toBe('');
    const listed = fs.readFileSync(path.join(root, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => l.slice(66));
    for (const f of ['./node/bin/node', './dist/src/main.js', './native/bin/berth-runtime', './native/bin/berth-monitor', './native/build/Release/berth_native.node', './hack/systemd/berth.service', './cni/10-berth.conflist', './berth.toml', './crictl.yaml', './install']) {
      expect(listed, f).toContain(f);
    }
    // Production dependencies only.
    expect(fs.existsSync(path.join(root, 'node_modules', 'vitest'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'node_modules', '@grpc', 'grpc-js'))).toBe(true);
  });

  /** Starts a berthd (the command line given) on a socket, root and state under dir; resolves once Version answers. */
  async function versionOfServing(argv: string[], tag: string): Promise<unknown> {
    const socket = path.join(dir, `${tag}.sock`);
    const child = spawn(argv[0], [...argv.slice(1), '--listen', socket, '--root', path.join(dir, `${tag}-root`), '--state', path.join(dir, `${tag}-state`)], { stdio: 'ignore' });
    try {
      await until(`the ${tag} berthd to serve`, () => fs.existsSync(socket), 20_000);
      const client = connectCri(`unix://${socket}`);
      try {
        return await until('Version', () => client.runtime.Version({}), 20_000);
      } finally {
        client.close();
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }

  it('makes a Debian package that lintian passes at warning level', async () => {
    const { stdout } = await promisify(execFile)('bash', [path.join(repo, 'hack/deb.sh'), tarball(1), path.join(dir, 'deb')], { encoding: 'utf8' });
    console.log(`[release] ${stdout.trim()}`);
    const deb = path.join(dir, 'deb', `berth_${version}_amd64.deb`);
    const control = execFileSync('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture', 'Depends'], { encoding: 'utf8' });
    expect(control).toContain(`Version: ${version}`);
    // Run-time packages only: nothing berth needs only to build.
    expect(control).not.toMatch(/-dev\b|build-essential|clang|musl/);
    expect(execFileSync('dpkg-deb', ['-I', deb, 'conffiles'], { encoding: 'utf8' }).trim().split('\n')).toEqual(['/etc/berth/berth.toml', '/etc/cni/net.d/10-berth.conflist']);
    const lintian = await promisify(execFile)('lintian', ['--fail-on', 'warning', '--display-level', '>=warning', deb], { encoding: 'utf8' }).catch((e: { stdout: string; code: number }) => e);
    expect(lintian.stdout.trim()).toBe('');
  });

  it('installs the package, keeps an operator\'s edit across a reinstall, and removes and purges it', async () => {
    const deb = path.join(dir, 'deb', `berth_${version}_amd64.deb`);
    // This machine's own berth (hack/install.sh installs the package it builds in build/package) and its
    // configuration are put back afterwards. (The upgrade over running containers, with systemd, is the
    // node VM's: test/node/node-vm.test.ts.)
    const saved = ['/etc/berth/berth.toml', '/etc/cni/net.d/10-berth.conflist', '/etc/crictl.yaml'].map((f) => [f, fs.existsSync(f) ? fs.readFileSync(f) : undefined] as const);
    // "VERSION ii" when installed; dpkg-query fails for a package it never saw.
    const installedBefore = spawnSync('dpkg-query', ['-W', '-f=${Version} ${db:Status-Abbrev}', 'berth'], { encoding: 'utf8' }).stdout.trim();
    const dpkg = (...args: string[]) => promisify(execFile)('dpkg', ['--force-confold', ...args], { encoding: 'utf8' });
    try {
      await dpkg('-i', deb);
      const report = execFileSync('/usr/bin/berthd', ['version'], { encoding: 'utf8' }).split('\n');
      expect(report[2]).toBe(`node: v${(packageJson() as unknown as { engines: { node: string } }).engines.node}`);
      expect(report.slice(3).filter(Boolean)).toEqual(['runtime', 'monitor', 'init', 'pinns', 'unpack'].map((h) => `berth-${h}: ${version}`));
      expect(await versionOfServing(['/usr/bin/berthd', '--config', '/etc/berth/berth.toml'], 'deb')).toMatchObject({ runtime_name: 'berth', runtime_version: version });
      // A reinstall keeps the operator's edit of a conffile.
      fs.appendFileSync('/etc/berth/berth.toml', '# edited by the operator\n');
      await dpkg('-i', deb);
      expect(fs.readFileSync('/etc/berth/berth.toml', 'utf8')).toContain('# edited by the operator');
      await dpkg('-r', 'berth');
      expect(fs.existsSync('/usr/bin/berthd')).toBe(false);
      expect(fs.existsSync('/etc/berth/berth.toml')).toBe(true);
      await dpkg('--purge', 'berth');
      expect(fs.existsSync('/etc/berth')).toBe(false);
    } finally {
      const own = path.join(repo, 'build', 'package', `berth_${installedBefore.split(' ')[0]}_amd64.deb`);
      if (installedBefore.endsWith(' ii') && fs.existsSync(own)) await dpkg('-i', own);
      else await dpkg('--purge', 'berth').catch(() => undefined);
      for (const [file, bytes] of saved) {
        if (bytes === undefined) continue;
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, bytes);
      }
    }
  });

  it('runs berthd on its own node: version names the commit and the pinned Node, and it serves the CRI', async () => {
    const root = path.join(dir, name);
    const node = path.join(root, 'node', 'bin', 'node');
    const commit = execFileSync('git', ['-C', repo, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const report = execFileSync(node, [path.join(root, 'dist/src/main.js'), 'version'], { encoding: 'utf8' }).split('\n');
    expect(report.slice(0, 3)).toEqual([`berth ${version}`, `commit: ${commit}`, `node: v${(packageJson() as unknown as { engines: { node: string } }).engines.node}`]);
    expect(report.slice(3).filter(Boolean)).toEqual(['runtime', 'monitor', 'init', 'pinns', 'unpack'].map((h) => `berth-${h}: ${version}`));
    const answer = await versionOfServing([node, path.join(root, 'dist/src/main.js'), '--config', path.join(root, 'berth.toml')], 'bundle');
    expect(answer).toMatchObject({ runtime_name: 'berth', runtime_version: version });
  });
});
