// Issue 14: berth's C under AddressSanitizer and UBSan. Every helper is built with both (make -C native
// sanitize, which also runs the C tests so built); the fuzz targets of the parsers of hostile input run
// over their corpora and fuzz for a few seconds each (hack/fuzz.sh); and a berthd on the sanitized
// helpers runs a pod through its whole life. A sanitizer report anywhere (a helper's own stderr goes to
// files the monitor keeps, so each report is also written to a log dir of this test's) fails the test.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { packageRoot } from '../../src/util/package-root';
import { startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';
import { pidsWithCmdline } from '../support/procs';
import { until } from '../support/until';

const NATIVE = path.join(packageRoot(), 'native');
// Asynchronous: a build or a fuzzing run takes tens of seconds, and a test worker whose event loop is held
// that long misses vitest's own calls (its RPC times out after 60 s).
const run = promisify(execFile);
const ASAN_BIN = path.join(NATIVE, 'build', 'asan', 'bin');
const tag = `${process.pid % 10000}`;

/** The sanitizer reports written so far (their files' names, and the first lines of each). */
function reports(dir: string): string[] {
  return fs.readdirSync(dir).map((f) => `${f}: ${fs.readFileSync(path.join(dir, f), 'utf8').split('\n').slice(0, 12).join('\n')}`);
}

describe('native code under sanitizers', () => {
  let logs: string;

  beforeAll(() => {
    logs = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-sanitizer-logs-'));
  });

  afterAll(() => {
    fs.rmSync(logs, { recursive: true, force: true });
  });

  it('builds every helper with ASan and UBSan, and the C tests pass on that build', { timeout: 600_000 }, async () => {
    await run('make', ['-s', '-C', NATIVE, 'sanitize'], { maxBuffer: 64 << 20 });
    for (const helper of ['runtime', 'monitor', 'init', 'pinns', 'unpack']) {
      // Each binary carries the ASan runtime (clang links it in).
      expect((await run('nm', [path.join(ASAN_BIN, `berth-${helper}`)], { maxBuffer: 64 << 20 })).stdout).toContain('__asan_init');
    }
  });

  it.each(['fuzz_unpack', 'fuzz_http', 'fuzz_spec', 'fuzz_control'])('%s: its corpus, then 10 s of fuzzing, find nothing', { timeout: 600_000 }, async (target) => {
    const { stdout: out } = await run('bash', [path.join(packageRoot(), 'hack', 'fuzz.sh'), '10', target], { maxBuffer: 64 << 20 });
    expect(out).toMatch(new RegExp(`^${target}: \\d+ inputs in 10s, nothing found$`, 'm'));
  });

  describe('a pod on the sanitized helpers', () => {
    let env: PodDaemon | undefined;

    beforeAll(async () => {
      const sanitizers = { BERTH_HELPERS_DIR: ASAN_BIN, ASAN_OPTIONS: `log_path=${logs}/asan`, UBSAN_OPTIONS: `log_path=${logs}/ubsan:print_stacktrace=1` };
      env = await startPodDaemon('berth-sanitized', { name: `san-${tag}`, bridge: `bsan${tag}`, subnet: `10.127.${process.pid % 250}` }, sanitizers);
    }, 600_000);

    afterAll(async () => {
      await stopPodDaemon(env);
    });

    it('pulls (berth-unpack), runs a pod (pinns, init) and a container (runtime, monitor), execs, logs, stops and removes, with no report', { timeout: 120_000 }, async () => {
      const rt = env!.berthd.client.runtime;
      const config: PodSandboxConfig = { metadata: { name: 'san', namespace: 'default', uid: 'u-san', attempt: 0 }, hostname: 'san', log_directory: path.join(env!.dir, 'logs') };
      const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
      const id = (
        await rt.CreateContainer({
          pod_sandbox_id: podId,
          sandbox_config: config,
          config: { metadata: { name: 'c', attempt: 0 }, image: { image: env!.image }, command: ['sh', '-c', 'echo started; sleep 30'], log_path: 'c.log' },
        })
      ).container_id;
      await rt.StartContainer({ container_id: id });
      expect((await rt.ExecSync({ container_id: id, cmd: ['echo', 'exec'], timeout: 10 })).stdout.toString()).toBe('exec\n');
      await until('the container to log', () => fs.readFileSync(path.join(env!.dir, 'logs', 'c.log'), 'utf8').includes('started'), 10_000);
      // The container's monitor is the sanitized build, and reports would go where this test looks.
      const [monitor] = pidsWithCmdline(id).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === path.join(ASAN_BIN, 'berth-monitor'));
      expect(monitor, pidsWithCmdline(id).map((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).join(', ')).toBeDefined();
      expect(fs.readFileSync(`/proc/${monitor}/environ`, 'utf8').split('\0')).toContain(`ASAN_OPTIONS=log_path=${logs}/asan`);
      await rt.StopContainer({ container_id: id, timeout: 2 });
      expect((await rt.ContainerStatus({ container_id: id })).status?.state).toBe('CONTAINER_EXITED');
      await rt.RemoveContainer({ container_id: id });
      await rt.StopPodSandbox({ pod_sandbox_id: podId });
      await rt.RemovePodSandbox({ pod_sandbox_id: podId });
      expect(reports(logs)).toEqual([]);
    });
  });
});
