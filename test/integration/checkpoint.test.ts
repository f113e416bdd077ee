// CheckpointContainer (issue 15): NotFound for an unknown container, the location checked, and then, as
// berth writes no checkpoint yet, UNIMPLEMENTED with CRIU's own verdict on this host: the same first error
// `criu check` prints here when CRIU cannot run on this kernel.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigOf, startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';

const tag = `${process.pid % 10000}`;

/** What `criu check` says here, read the way an operator would: its first error line, or nothing. */
function criuVerdict(): { installed: boolean; firstError?: string } {
  try {
    execFileSync('criu', ['check'], { stdio: 'pipe' });
    return { installed: true };
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer; stdout?: Buffer };
    if (e.code === 'ENOENT') return { installed: false };
    const line = `${e.stderr?.toString() ?? ''}\n${e.stdout?.toString() ?? ''}`.split('\n').find((l) => l.includes('Error'));
    return { installed: true, firstError: line?.replace(/^Error \([^)]*\):\s*/, '').trim() };
  }
}

describe('CheckpointContainer', () => {
  let env: PodDaemon;

  beforeAll(async () => {
    env = await startPodDaemon('berth-ckpt', { name: `ck-${tag}`, bridge: `bck${tag}`, subnet: `10.133.${process.pid % 250}` });
  });

  afterAll(async () => {
    await stopPodDaemon(env);
  });

  it("answers NotFound, INVALID_ARGUMENT, or UNIMPLEMENTED with CRIU's verdict on this host", async () => {
    const rt = env.berthd.client.runtime;
    const config = podConfigOf(env, 'ck', tag);
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    const id = (await rt.CreateContainer({ pod_sandbox_id: podId, sandbox_config: config, config: { metadata: { name: 'c', attempt: 0 }, image: { image: env.image }, command: ['sleep', '60'] } })).container_id;
    const checkpoint = (containerId: string, location: string) => rt.CheckpointContainer({ container_id: containerId, location }).then(() => undefined, (e: grpc.ServiceError) => e);
    const archive = path.join(env.dir, 'ck.tar');

    expect(await checkpoint('f'.repeat(64), archive)).toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await checkpoint(id, 'relative.tar')).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect(await checkpoint(id, archive)).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('not running') });
    await rt.StartContainer({ container_id: id });
    const refused = await checkpoint(id, archive);
    expect(refused?.code).toBe(grpc.status.UNIMPLEMENTED);
    const criu = criuVerdict();
    if (!criu.installed) expect(refused?.details).toContain('criu is not installed');
    else if (criu.firstError) expect(refused?.details).toContain(`cannot run on this kernel (${os.release()}): \`criu check\` says "${criu.firstError}"`);
    else expect(refused?.details).toContain('berth does not write checkpoints yet');
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
  });
});
