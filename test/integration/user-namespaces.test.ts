// Pods in their own user namespace (issue 15; the CRI's NamespaceMode POD with one uid and one gid
// range): the containers' ids are mapped, the image's files are seen through idmapped layers (owned by
// the pod's root inside, never chowned on disk), the writable layer and the pod's files belong to the
// pod's root, an idmapped CRI mount shows host root's files as the pod's root's, exec runs in the same
// namespace, and everything (the user namespace's pin, the idmapped layer mounts) is gone after removal.
// What the CRI does not allow is refused, and leaves nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import type { UserNamespace } from '../../src/generated/runtime/v1/UserNamespace';
import { exitOf, startBerthd, type BerthdHandle } from '../support/berthd';
import { logLines, podConfigOf, startPodDaemon, stopPodDaemon, type PodDaemon } from '../support/pod-daemon';

const tag = `${process.pid % 10000}`;
/** A host range of the kubelet's kind (a multiple of 65536, never 0). */
const HOST_ID = 65536 * (8 + (process.pid % 64));
const mapping = (hostId = HOST_ID, length = 65536, containerId = 0) => [{ container_id: containerId, host_id: hostId, length }];
const podUserns = (): UserNamespace => ({ mode: 'POD', uids: mapping(), gids: mapping() });

describe('user namespaces', () => {
  let env: PodDaemon;
  /** The daemon now (the crash test restarts it on the same dirs). */
  let berthd: BerthdHandle;
  let volume: string;

  beforeAll(async () => {
    env = await startPodDaemon('berth-userns', { name: `un-${tag}`, bridge: `bun${tag}`, subnet: `10.131.${process.pid % 250}` });
    berthd = env.berthd;
    // A host dir as the host's root leaves it: mounted idmapped and plain.
    volume = path.join(env.dir, 'volume');
    fs.mkdirSync(volume);
    fs.writeFileSync(path.join(volume, 'f'), 'host root\'s\n', { mode: 0o644 });
  });

  afterAll(async () => {
    await stopPodDaemon(env, berthd);
  });

  const podConfig = (name: string, userns: UserNamespace | undefined, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig => ({
    ...podConfigOf(env, name, tag),
    linux: { security_context: { namespace_options: { ...(userns ? { userns_options: userns } : {}) } } },
    ...extra,
  });
  const pinsOf = (kind: string) => fs.readdirSync(path.join(berthd.state, 'ns', kind), { withFileTypes: true }).map((d) => d.name).sort();
  /** Mount points (mountinfo's 5th field) of idmapped layer copies under this berthd's state dir. */
  const idmappedMounts = () =>
    fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p.startsWith(`${berthd.state}/`) && /\/(idmapped|image-volumes-idmapped\/\d+)\//.test(p));
  const uidOfProcess = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

  it("maps the containers' ids, shows the image and idmapped mounts as the pod root's, and leaves nothing after removal", async () => {
    const rt = berthd.client.runtime;
    const config = podConfig('mapped', podUserns());
    const podId = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    expect(pinsOf('user')).toContain(podId);
    const status = await rt.PodSandboxStatus({ pod_sandbox_id: podId });
    expect(status.status?.linux?.namespaces?.options?.userns_options).toMatchObject({ mode: 'POD', uids: [{ container_id: 0, host_id: HOST_ID, length: 65536 }] });

    const script = [
      'cat /proc/self/uid_map /proc/self/gid_map',
      'id -u',
      'stat -c "%u:%g" /bin/busybox /etc/hosts /vol/f /plain/f /img/bin/busybox',
      'touch /made && echo made',
      'echo "10.9.9.9 extra" >> /etc/hosts && echo hosts',
      'echo done; sleep 60',
    ].join('; ');
    const id = (
      await rt.CreateContainer({
        pod_sandbox_id: podId,
        sandbox_config: config,
        config: {
          metadata: { name: 'mapped', attempt: 0 },
          image: { image: env.image },
          command: ['sh', '-c', script],
          log_path: 'mapped.log',
          mounts: [
            { container_path: '/vol', host_path: volume, uidMappings: mapping(), gidMappings: mapping() },
            { container_path: '/plain', host_path: volume, readonly: true },
            { container_path: '/img', image: { image: env.image } },
          ],
          linux: { security_context: { namespace_options: { userns_options: podUserns() } } },
        },
      })
    ).container_id;
    // The idmapped copies of the layers are detached once the overlay has its own.
    expect(idmappedMounts()).toEqual([]);
    await rt.StartContainer({ container_id: id });
    const out = await logLines(env, 'mapped');
    expect(out).toEqual([
      `0 ${HOST_ID} 65536`,
      `0 ${HOST_ID} 65536`,
      '0',
      '0:0', // the image's file, through an idmapped layer
      '0:0', // the pod's /etc/hosts, owned by the pod's root
      '0:0', // host root's file through the idmapped mount
      '65534:65534', // the same file through a plain bind: host root is not mapped
      '0:0', // an image volume's file: its layers are idmapped too
      'made',
      'hosts',
      'done',
    ]);

    const pid = (JSON.parse((await rt.ContainerStatus({ container_id: id, verbose: true })).info.info) as { pid: number }).pid;
    expect(uidOfProcess(pid)).toBe(HOST_ID);
    // On the host: the container's new file holds the pod root's host id; the image's layers on disk keep 0.
    expect(fs.statSync(`/proc/${pid}/root/made`).uid).toBe(HOST_ID);
    const layers = path.join(berthd.root, 'layers');
    const onDisk = fs.readdirSync(layers).map((l) => path.join(layers, l, 'diff', 'bin', 'busybox')).filter((f) => fs.existsSync(f));
    expect(onDisk.length).toBe(1);
    expect(fs.statSync(onDisk[0]).uid).toBe(0);
    expect(fs.statSync(path.join(volume, 'f')).uid).toBe(0);

    // The exec'd process is in the container's own user namespace (its sleep's), not merely one like it.
    const execScript = 'id -u; cat /proc/self/uid_map; [ "$(readlink /proc/self/ns/user)" = "$(readlink /proc/$(pidof sleep)/ns/user)" ] && echo same';
    const exec = await rt.ExecSync({ container_id: id, cmd: ['sh', '-c', execScript], timeout: '10' });
    expect(Buffer.from(exec.stdout).toString().split('\n').map((l) => l.trim().replace(/\s+/g, ' '))).toEqual(['0', `0 ${HOST_ID} 65536`, 'same', '']);

    await rt.StopPodSandbox({ pod_sandbox_id: podId });
    await rt.RemovePodSandbox({ pod_sandbox_id: podId });
    expect(pinsOf('user')).not.toContain(podId);
    expect(idmappedMounts()).toEqual([]);
  });

  it('refuses what the CRI does not allow, and makes nothing for it', async () => {
    const rt = berthd.client.runtime;
    const pinsBefore = ['user', 'net'].map(pinsOf);
    const refused: Array<[string, PodSandboxConfig, string, number]> = [
      ['two mappings', podConfig('two', { mode: 'POD', uids: [...mapping(), ...mapping(HOST_ID + 65536)], gids: mapping() }), 'exactly one mapping', grpc.status.INVALID_ARGUMENT],
      ['id 0 unmapped', podConfig('no0', { mode: 'POD', uids: mapping(HOST_ID, 65536, 1), gids: mapping(HOST_ID, 65536, 1) }), 'container id 0 must be mapped', grpc.status.INVALID_ARGUMENT],
      ['mode CONTAINER', podConfig('ctr', { mode: 'CONTAINER' }), 'mode CONTAINER is not supported', grpc.status.INVALID_ARGUMENT],
      ['mode TARGET', podConfig('tgt', { mode: 'TARGET' }), 'mode TARGET is not supported', grpc.status.INVALID_ARGUMENT],
      ['host root mapped', podConfig('root', { mode: 'POD', uids: mapping(0), gids: mapping(0) }), "maps the host's id 0", grpc.status.INVALID_ARGUMENT],
      ['past 2^32', podConfig('big', { mode: 'POD', uids: mapping(2 ** 32 - 10, 65536), gids: mapping() }), 'past 2^32', grpc.status.INVALID_ARGUMENT],
      ['host network', podConfig('hostnet', { ...podUserns() }, { linux: { security_context: { namespace_options: { network: 'NODE', userns_options: podUserns() } } } }), "host's network namespace", grpc.status.INVALID_ARGUMENT],
    ];
    for (const [what, config, message, code] of refused) {
      const err = await rt.RunPodSandbox({ config }).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(err, what).toMatchObject({ code });
      expect(err?.details, what).toContain(message);
    }
    const runc = await rt.RunPodSandbox({ config: podConfig('runc', podUserns()), runtime_handler: 'runc' }).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(runc).toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    expect(runc?.details).toContain('cannot run a pod in its own user namespace');
    expect(['user', 'net'].map(pinsOf)).toEqual(pinsBefore);
    expect((await rt.ListPodSandbox({})).items.map((p) => p.metadata?.name)).not.toEqual(expect.arrayContaining(['two', 'no0', 'ctr', 'tgt', 'root', 'big', 'hostnet', 'runc']));

    // A container must live in its pod's user namespace, and idmap a mount only with its mappings.
    const hostPod = podConfig('hostusers', undefined);
    const hostPodId = (await rt.RunPodSandbox({ config: hostPod })).pod_sandbox_id;
    const mappedPod = podConfig('mapped2', podUserns());
    const mappedPodId = (await rt.RunPodSandbox({ config: mappedPod })).pod_sandbox_id;
    const create = (podId: string, sandbox: PodSandboxConfig, extra: object) =>
      rt.CreateContainer({ pod_sandbox_id: podId, sandbox_config: sandbox, config: { metadata: { name: 'c', attempt: 0 }, image: { image: env.image }, command: ['true'], ...extra } })
        .then(() => undefined, (e: grpc.ServiceError) => e);
    const cases: Array<[string, grpc.ServiceError | undefined, string]> = [
      ['POD in a pod of the host', await create(hostPodId, hostPod, { linux: { security_context: { namespace_options: { userns_options: podUserns() } } } }), 'differ from its pod'],
      ['other mappings', await create(mappedPodId, mappedPod, { linux: { security_context: { namespace_options: { userns_options: { mode: 'POD', uids: mapping(HOST_ID * 2), gids: mapping(HOST_ID * 2) } } } } }), 'differ from its pod'],
      ['NODE in a mapped pod', await create(mappedPodId, mappedPod, { linux: { security_context: { namespace_options: { userns_options: { mode: 'NODE' } } } } }), 'differ from its pod'],
      ['idmapped mount, no userns', await create(hostPodId, hostPod, { mounts: [{ container_path: '/vol', host_path: volume, uidMappings: mapping(), gidMappings: mapping() }] }), 'pod has no user namespace'],
      ['idmapped mount, other mappings', await create(mappedPodId, mappedPod, { mounts: [{ container_path: '/vol', host_path: volume, uidMappings: mapping(HOST_ID * 2), gidMappings: mapping(HOST_ID * 2) }] }), 'other mappings than the pod'],
      ['uid mappings only', await create(mappedPodId, mappedPod, { mounts: [{ container_path: '/vol', host_path: volume, uidMappings: mapping() }] }), 'exactly one mapping'],
    ];
    for (const [what, err, message] of cases) {
      expect(err, what).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      expect(err?.details, what).toContain(message);
    }
    expect((await rt.ListContainers({})).containers.filter((c) => [hostPodId, mappedPodId].includes(c.pod_sandbox_id))).toEqual([]);
    for (const id of [hostPodId, mappedPodId]) await rt.RemovePodSandbox({ pod_sandbox_id: id });
    expect(['user', 'net'].map(pinsOf)).toEqual(pinsBefore);
  });

  it('repairs a CreateContainer and a RunPodSandbox cut by a crash in the user namespace steps', async () => {
    const restart = async (failpoints: string) => {
      await berthd.stop('SIGTERM');
      berthd.client.close();
      berthd = await startBerthd({ dir: berthd.dir, args: ['--cni-conf-dir', env.network.confDir], env: failpoints ? { BERTH_FAILPOINTS: `${failpoints}=crash` } : {} });
    };
    const afterCrash = async () => {
      await exitOf(berthd.process);
      expect(berthd.process.signalCode).toBe('SIGKILL');
      berthd.client.close();
      berthd = await startBerthd({ dir: berthd.dir, args: ['--cni-conf-dir', env.network.confDir] });
    };
    // Between the idmapped layer copies and the overlay: the copies are detached at start-up.
    await restart('container.after-idmap');
    const config = podConfig('crash', podUserns());
    const podId = (await berthd.client.runtime.RunPodSandbox({ config })).pod_sandbox_id;
    const create = () =>
      berthd.client.runtime.CreateContainer({ pod_sandbox_id: podId, sandbox_config: config, config: { metadata: { name: 'c', attempt: 0 }, image: { image: env.image }, command: ['sleep', '60'] } });
    await expect(create()).rejects.toThrow();
    expect(idmappedMounts().length).toBe(1);
    await afterCrash();
    expect(berthd.output()).toContain('"repair":"container-rolled-back"');
    expect(idmappedMounts()).toEqual([]);
    const id = (await create()).container_id;
    await berthd.client.runtime.StartContainer({ container_id: id });
    expect((await berthd.client.runtime.ContainerStatus({ container_id: id })).status?.state).toBe('CONTAINER_RUNNING');
    await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: podId });
    // Right after the namespaces are pinned: the pod is rolled back, its user namespace's pin with it.
    await restart('pod.after-netns');
    await expect(berthd.client.runtime.RunPodSandbox({ config: podConfig('crash2', podUserns()) })).rejects.toThrow();
    expect(pinsOf('user').length).toBe(1);
    await afterCrash();
    expect(berthd.output()).toContain('"repair":"pod-rolled-back"');
    expect(pinsOf('user')).toEqual([]);
    expect((await berthd.client.runtime.ListPodSandbox({})).items).toEqual([]);
  }, 60_000);

  it('advertises user namespaces for its own runtime only', async () => {
    const status = await berthd.client.runtime.Status({});
    const features = Object.fromEntries(status.runtime_handlers.map((h) => [h.name, h.features?.user_namespaces]));
    expect(features).toEqual({ '': true, berth: true, runc: false });
  });
});
