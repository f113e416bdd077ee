// CDI devices (issue 15): devices named in CDI_devices or a cdi.k8s.io/ annotation, resolved from JSON and
// YAML spec files in the configured directories (a later directory wins), give the container their device
// nodes (with the device cgroup's access), mounts, environment and groups; a device no spec defines, a bad
// name, or an edit berth cannot apply (hooks) is refused and makes nothing. (/dev/null and /dev/zero are
// in every container's device cgroup anyway; what the test shows is that the nodes appear where the spec
// puts them.)
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import { logLines, podConfigOf, scriptContainer, startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';

const tag = `${process.pid % 10000}`;

describe('CDI devices', () => {
  let env: PodDaemon;
  let share: string;

  beforeAll(async () => {
    const base = fs.mkdtempSync(path.join('/tmp', 'berth-cdi-specs-'));
    const [etc, run] = [path.join(base, 'etc'), path.join(base, 'run')];
    share = path.join(base, 'share');
    for (const d of [etc, run, share]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(share, 'f'), 'shared by the spec\n');
    fs.writeFileSync(
      path.join(etc, 'berth-test.yaml'),
      [
        'cdiVersion: "0.6.0"',
        'kind: berth.test/dev',
        'containerEdits:',
        '  env: ["CDI_SPEC=yes"]',
        'devices:',
        '  - name: nul',
        '    containerEdits:',
        '      env: ["CDI_DEVICE=nul"]',
        '      deviceNodes:',
        '        - path: /dev/cdi-null',
        '          hostPath: /dev/null',
        '      mounts:',
        `        - hostPath: ${share}`,
        '          containerPath: /cdi-share',
        '          options: [ro]',
        '  - name: zero',
        '    containerEdits:',
        '      env: ["CDI_FROM=etc"]',
        '',
      ].join('\n'),
    );
    // The later directory wins for the same device: "zero" as /var/run/cdi would define it.
    fs.writeFileSync(
      path.join(run, 'berth-test.json'),
      JSON.stringify({
        cdiVersion: '0.6.0',
        kind: 'berth.test/dev',
        devices: [{ name: 'zero', containerEdits: { env: ['CDI_FROM=run'], deviceNodes: [{ path: '/dev/cdi-zero', hostPath: '/dev/zero', permissions: 'r' }], additionalGids: [4242] } }],
      }),
    );
    fs.writeFileSync(
      path.join(run, 'hooked.json'),
      JSON.stringify({ cdiVersion: '0.6.0', kind: 'berth.test/hooked', devices: [{ name: 'h', containerEdits: { hooks: [{ hookName: 'createContainer', path: '/bin/true' }] } }] }),
    );
    fs.writeFileSync(path.join(run, 'broken.yaml'), 'cdiVersion: [unclosed\n');
    env = await startPodDaemon('berth-cdi', { name: `cd-${tag}`, bridge: `bcd${tag}`, subnet: `10.134.${process.pid % 250}` }, undefined, `[runtime]\ncdi_spec_dirs = ["${etc}", "${run}"]\n`);
  });

  afterAll(async () => {
    await stopPodDaemon(env);
  });

  const podConfig = (name: string) => podConfigOf(env, name, tag);

  it('gives a container its devices, mounts, environment and groups, from CDI_devices and the annotations', async () => {
    const rt = env.berthd.client.runtime;
    const config = podConfig('cdi');
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    const script = [
      'stat -c "%t:%T %F" /dev/cdi-null /dev/cdi-zero',
      'echo "$CDI_SPEC $CDI_DEVICE $CDI_FROM"',
      'cat /cdi-share/f',
      'touch /cdi-share/x 2>/dev/null || echo share-ro',
      'id -G',
      'echo x > /dev/cdi-null && echo null-writable',
      'head -c 2 /dev/cdi-zero | od -An -tx1',
      'echo done',
    ].join('; ');
    const id = (
      await rt.CreateContainer({
        pod_sandbox_id: podId,
        sandbox_config: config,
        config: scriptContainer(env, 'cdi', script, { CDI_devices: [{ name: 'berth.test/dev=nul' }], annotations: { 'cdi.k8s.io/test': 'berth.test/dev=zero' } }),
      })
    ).container_id;
    await rt.StartContainer({ container_id: id });
    const out = await logLines(env, 'cdi');
    expect(out).toEqual([
      '1:3 character special file',
      '1:5 character special file',
      'yes nul run',
      'shared by the spec',
      'share-ro',
      '0 4242',
      'null-writable',
      '00 00',
      'done',
    ]);
    expect(fs.existsSync(path.join(share, 'x'))).toBe(false);
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
  });

  it('refuses an unknown device, a bad name, and hooks, and makes nothing', async () => {
    const rt = env.berthd.client.runtime;
    const config = podConfig('cdibad');
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    const create = (extra: Partial<ContainerConfig>) =>
      rt.CreateContainer({ pod_sandbox_id: podId, sandbox_config: config, config: scriptContainer(env, 'bad', 'true', extra) }).then(() => undefined, (e: grpc.ServiceError) => e);
    const cases: Array<[string, Partial<ContainerConfig>, number, string]> = [
      ['unknown', { CDI_devices: [{ name: 'berth.test/dev=missing' }] }, grpc.status.FAILED_PRECONDITION, 'broken.yaml'],
      ['bad name', { CDI_devices: [{ name: 'no-kind' }] }, grpc.status.INVALID_ARGUMENT, 'is not a CDI device name'],
      ['bad annotation', { annotations: { 'cdi.k8s.io/x': 'berth.test/dev=ok,=bad' } }, grpc.status.INVALID_ARGUMENT, 'annotation cdi.k8s.io/x'],
      ['hooks', { CDI_devices: [{ name: 'berth.test/hooked=h' }] }, grpc.status.FAILED_PRECONDITION, 'asks for hooks, which berth does not apply'],
    ];
    for (const [what, extra, code, message] of cases) {
      const err = await create(extra);
      expect(err, what).toMatchObject({ code });
      expect(err?.details, what).toContain(message);
    }
    expect((await rt.ListContainers({ filter: { pod_sandbox_id: podId } })).containers).toEqual([]);
    expect(fs.readdirSync(path.join(env.berthd.state, 'containers'))).toEqual([]);
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
  });
});
