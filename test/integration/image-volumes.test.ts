// Image volumes (issue 15; the CRI's Mount.image and image_sub_path, the kubelet's ImageVolume source): an
// image's content mounted read-only in a container, whole or a sub path of it, pulled like any image;
// a symlink in the image cannot lead a sub path out of it; a missing image or sub path is refused; the
// image's layers are kept from image GC while a container uses them; nothing is left after removal.
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import { buildImage, layer } from '../support/oci/image';
import { pushImage } from '../support/oci/push';
import { logLines, podConfigOf, scriptContainer, startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';

const tag = `${process.pid % 10000}`;

describe('image volumes', () => {
  let env: PodDaemon;
  let data: string;

  beforeAll(async () => {
    env = await startPodDaemon('berth-imgvol', { name: `iv-${tag}`, bridge: `biv${tag}`, subnet: `10.132.${process.pid % 250}` });
    // A data image of two layers: the second replaces a file of the first; "escape" points out of the image.
    const image = buildImage([
      layer([{ type: 'dir', path: 'models' }, { type: 'file', path: 'models/weights', content: 'old\n' }, { type: 'file', path: 'README', content: 'data image\n' }]),
      layer([{ type: 'file', path: 'models/weights', content: 'new\n' }, { type: 'symlink', path: 'escape', target: '/etc' }]),
    ]);
    await pushImage({ host: env.registry.host, repository: 'data' }, image, ['v1']);
    data = `${env.registry.host}/data:v1`;
    await env.berthd.client.image.PullImage({ image: { image: data } });
  });

  afterAll(async () => {
    await stopPodDaemon(env);
  });

  const podConfig = (name: string) => podConfigOf(env, name, tag);
  const ctr = (name: string, script: string, mounts: ContainerConfig['mounts']) => scriptContainer(env, name, script, { mounts });
  const volumeMounts = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p.startsWith(`${env.berthd.state}/`) && p.includes('/image-volumes'));

  it('mounts an image read-only, whole or a sub path of it, and removes it with the container', async () => {
    const rt = env.berthd.client.runtime;
    const config = podConfig('vol');
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    const script = 'cat /data/models/weights /data/README /models/weights; ls /data; touch /data/x 2>/dev/null || echo read-only; echo done; sleep 60';
    const id = (
      await rt.CreateContainer({
        pod_sandbox_id: podId,
        sandbox_config: config,
        config: ctr('vol', script, [
          { container_path: '/data', image: { image: data } },
          { container_path: '/models', image: { image: data }, image_sub_path: 'models' },
        ]),
      })
    ).container_id;
    expect(volumeMounts().length).toBe(2);
    await rt.StartContainer({ container_id: id });
    const out = await logLines(env, 'vol');
    expect(out).toEqual(['new', 'data image', 'new', 'README', 'escape', 'models', 'read-only', 'done']);
    const status = (await rt.ContainerStatus({ container_id: id })).status!;
    expect(status.mounts.map((m) => [m.container_path, m.image?.image, m.image_sub_path, m.readonly])).toEqual([
      ['/data', data, '', true],
      ['/models', data, 'models', true],
    ]);
    // In use by a container: RemoveImage takes the name, image GC keeps the layers.
    await env.berthd.client.image.RemoveImage({ image: { image: data } });
    const exec = await rt.ExecSync({ container_id: id, cmd: ['cat', '/models/weights'], timeout: '10' });
    expect(Buffer.from(exec.stdout).toString()).toBe('new\n');
    await rt.StopPodSandbox({ pod_sandbox_id: podId });
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
    expect(volumeMounts()).toEqual([]);
    await env.berthd.client.image.PullImage({ image: { image: data } });
  });

  it('refuses a missing image, a missing sub path, one that leaves the image, and a host path with an image', async () => {
    const rt = env.berthd.client.runtime;
    const config = podConfig('bad');
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    const create = (mounts: ContainerConfig['mounts']) =>
      rt.CreateContainer({ pod_sandbox_id: podId, sandbox_config: config, config: ctr('bad', 'true', mounts) }).then(() => undefined, (e: grpc.ServiceError) => e);
    const cases: Array<[string, ContainerConfig['mounts'], number, string]> = [
      ['not pulled', [{ container_path: '/d', image: { image: `${env.registry.host}/data:never` } }], grpc.status.NOT_FOUND, 'pull it first'],
      ['missing sub path', [{ container_path: '/d', image: { image: data }, image_sub_path: 'nothing/here' }], grpc.status.INVALID_ARGUMENT, 'does not exist in image'],
      // "escape" is /etc inside the image, which the image does not have: never the host's /etc.
      ['symlink out', [{ container_path: '/d', image: { image: data }, image_sub_path: 'escape/passwd' }], grpc.status.INVALID_ARGUMENT, 'does not exist in image'],
      ['dot-dot', [{ container_path: '/d', image: { image: data }, image_sub_path: '../../etc' }], grpc.status.INVALID_ARGUMENT, 'image_sub_path'],
      ['host path and image', [{ container_path: '/d', host_path: env.dir, image: { image: data } }], grpc.status.INVALID_ARGUMENT, 'exclusive'],
      ['sub path, no image', [{ container_path: '/d', host_path: env.dir, image_sub_path: 'models' }], grpc.status.INVALID_ARGUMENT, 'image is not'],
    ];
    for (const [what, mounts, code, message] of cases) {
      const err = await create(mounts);
      expect(err, what).toMatchObject({ code });
      expect(err?.details, what).toContain(message);
    }
    expect((await rt.ListContainers({ filter: { pod_sandbox_id: podId } })).containers).toEqual([]);
    expect(volumeMounts()).toEqual([]);
    expect(fs.readdirSync(path.join(env.berthd.state, 'containers'))).toEqual([]);
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
  });
});
