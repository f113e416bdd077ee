// The release bundle (issue 21): hack/release.sh builds berth-<version>-linux-amd64.tar.gz from a clean
// checkout of HEAD; built twice it is the same bytes, it holds no path of the machine that built it, its
// SHA256SUMS match its files, and the berthd in it runs on the node in it: `version` names the commit and
// the pinned Node, and it serves the CRI.
import { execFile, execFileSync, spawn } from 'node:child_process';
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

  it('runs berthd on its own node: version names the commit and the pinned Node, and it serves the CRI', async () => {
    const root = path.join(dir, name);
    const node = path.join(root, 'node', 'bin', 'node');
    const commit = execFileSync('git', ['-C', repo, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const report = execFileSync(node, [path.join(root, 'dist/src/main.js'), 'version'], { encoding: 'utf8' }).split('\n');
    expect(report.slice(0, 3)).toEqual([`berth ${version}`, `commit: ${commit}`, `node: v${(packageJson() as unknown as { engines: { node: string } }).engines.node}`]);
    expect(report.slice(3).filter(Boolean)).toEqual(['runtime', 'monitor', 'init', 'pinns', 'unpack'].map((h) => `berth-${h}: ${version}`));
    const socket = path.join(dir, 'berth.sock');
    const child = spawn(node, [path.join(root, 'dist/src/main.js'), '--config', path.join(root, 'berth.toml'), '--listen', socket, '--root', path.join(dir, 'root'), '--state', path.join(dir, 'state')], { stdio: 'ignore' });
    try {
      await until('the bundled berthd to serve', () => fs.existsSync(socket), 20_000);
      const client = connectCri(`unix://${socket}`);
      try {
        const answer = await until('Version', () => client.runtime.Version({}), 20_000);
        expect(answer).toMatchObject({ runtime_name: 'berth', runtime_version: version });
      } finally {
        client.close();
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
