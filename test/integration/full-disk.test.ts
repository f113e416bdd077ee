// Crash consistency on a full disk: berth's root on a small tmpfs (48 MiB; tmpfs has the xattrs and
// whiteout devices overlayfs needs, and a limited inode count, so that "no room for a directory" can be
// made too). A pull that does not fit fails RESOURCE_EXHAUSTED and leaves nothing (no blob, temp file,
// temp layer or record) while the images already there stay whole and usable; a CreateContainer that
// finds no room fails cleanly (no record, mount or dir) and works again once there is room.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxImage } from '../../hack/images/busybox';
import type { ContainerConfig } from '../../src/generated/runtime/v1/ContainerConfig';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { MNT_DETACH, mount, umount2 } from '../../src/native';
import { chainIds } from '../../src/image/pull';
import { mountsUnder } from '../../src/storage/rootfs';
import { startBerthd, type BerthdHandle } from '../support/berthd';
import { bridgeNetwork, type BridgeNetwork } from '../support/bridge-network';
import { buildImage, layer, type BuiltImage } from '../support/oci/image';
import { pushImage } from '../support/oci/push';
import { startRegistry, type TestRegistry } from '../support/registry';
import { until } from '../support/until';

const tag = `${process.pid % 10000}`;
const SUBNET = `10.134.${process.pid % 250}`;
/** Room for busybox and a container or two; the big image's layer (64 MiB, random) never fits. */
const DISK = 'size=48m,nr_inodes=4096';

const hexOf = (digest: string) => digest.replace(/^sha256:/, '');
const sha256File = (file: string) => `sha256:${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`;
const ls = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

describe('a full disk', () => {
  let registry: TestRegistry | undefined;
  let network: BridgeNetwork | undefined;
  let berthd: BerthdHandle | undefined;
  let dir: string;
  let root: string;
  let mounted = false;
  let busybox: string;
  let big: BuiltImage;
  let bigRef: string;
  let pod: { id: string; config: PodSandboxConfig };
  /** Files that fill the disk's blocks or its inodes. */
  let fillers: string;

  const rt = () => berthd!.client.runtime;
  const free = () => fs.statfsSync(root);

  const ctrConfig = (name: string, script: string): ContainerConfig => ({
    metadata: { name, attempt: 0 },
    image: { image: busybox },
    command: ['sh', '-c', script],
    log_path: `${name}.log`,
  });

  const createContainer = (config: ContainerConfig) => rt().CreateContainer({ pod_sandbox_id: pod.id, config, sandbox_config: pod.config });

  async function runToExit(config: ContainerConfig): Promise<string> {
    const id = (await createContainer(config)).container_id;
    await rt().StartContainer({ container_id: id });
    const s = await until(`container ${id} to exit`, async () => {
      const st = (await rt().ContainerStatus({ container_id: id })).status!;
      return st.state === 'CONTAINER_EXITED' && st;
    }, 15_000);
    expect(s.exit_code).toBe(0);
    return id;
  }

  const logOf = (name: string) => fs.readFileSync(path.join(pod.config.log_directory!, `${name}.log`), 'utf8');

  /** What a container could leave: records and dirs under the root, state dirs, mounts, temp files. */
  function containerTraces() {
    return {
      records: ls(path.join(root, 'containers')),
      stateDirs: ls(path.join(dir, 'state', 'containers')),
      mounts: fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[4])
        .filter((p) => p?.startsWith(`${dir}/`))
        .sort(),
    };
  }

  /** Writes a filler file until the disk has no block left. */
  function fillBlocks(name: string): void {
    const fd = fs.openSync(path.join(fillers, name), 'w');
    const chunk = Buffer.alloc(1024 * 1024, 1);
    try {
      for (;;) fs.writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      fs.closeSync(fd);
    }
    // The last partial page too.
    const small = fs.openSync(path.join(fillers, `${name}.tail`), 'w');
    try {
      for (;;) fs.writeSync(small, Buffer.alloc(512, 1));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      fs.closeSync(small);
    }
  }

  /** Makes empty files until only `left` inodes are free. */
  function fillInodes(left: number): void {
    let n = 0;
    while (free().ffree > left) fs.writeFileSync(path.join(fillers, `inode-${n++}`), '');
    expect(free().ffree).toBe(left);
  }

  function emptyFillers(): void {
    for (const name of fs.readdirSync(fillers)) fs.rmSync(path.join(fillers, name));
  }

  beforeAll(async () => {
    registry = await startRegistry();
    await pushImage({ host: registry.host, repository: 'busybox' }, busyboxImage(), ['latest']);
    busybox = `${registry.host}/busybox:latest`;
    // Random bytes do not compress: the blob and the unpacked file are 64 MiB each.
    big = buildImage([layer([{ type: 'file', path: 'big', content: randomBytes(64 * 1024 * 1024) }])]);
    await pushImage({ host: registry.host, repository: 'big' }, big, ['latest']);
    bigRef = `${registry.host}/big:latest`;

    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-full-disk-'));
    root = path.join(dir, 'root');
    fs.mkdirSync(root);
    mount('tmpfs', root, 'tmpfs', 0, DISK);
    mounted = true;
    network = bridgeNetwork(dir, { name: `fd${tag}`, bridge: `bfd${tag}`, subnet: SUBNET, portmap: false });
    // The root (images, layers, container records and writable layers) on the small disk; the state dir
    // (bundles, monitors, runtime state) stays on the normal one.
    berthd = await startBerthd({ dir, args: ['--cni-conf-dir', network.confDir] });
    fillers = path.join(root, 'fillers');
    fs.mkdirSync(fillers);
  }, 120_000);

  afterAll(async () => {
    if (berthd) {
      try {
        if (fillers) emptyFillers();
        for (const p of (await berthd.client.runtime.ListPodSandbox({})).items) await berthd.client.runtime.RemovePodSandbox({ pod_sandbox_id: p.id });
      } finally {
        berthd.client.close();
        await berthd.stop('SIGTERM');
      }
    }
    if (dir) {
      // Anything still mounted below the test's dir (a leaked rootfs would be a bug, but must not stay).
      for (const point of await mountsUnder(dir)) {
        if (point === root) continue;
        umount2(point, MNT_DETACH);
      }
      if (mounted) umount2(root, MNT_DETACH);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    network?.remove();
    await registry?.stop();
  }, 60_000);

  it('pulls a small image onto it', async () => {
    const res = await berthd!.client.image.PullImage({ image: { image: busybox } });
    expect(res.image_ref).toBe(busyboxImage().config.digest);
  });

  it('fails a pull that does not fit with RESOURCE_EXHAUSTED, leaves nothing of it, and keeps the other images whole', async () => {
    const before = free();
    const err = await berthd!.client.image.PullImage({ image: { image: bigRef } }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toMatch(/no space left on device|ENOSPC/i);

    // Nothing half-done: no download in progress, no temp layer, no record.
    expect(ls(path.join(root, 'content', 'ingest'))).toEqual([]);
    expect(ls(path.join(root, 'layers')).filter((n) => n.startsWith('tmp-'))).toEqual([]);
    expect((await berthd!.client.image.ImageStatus({ image: { image: bigRef } })).image).toBeNull();
    expect((await berthd!.client.image.ListImages({})).images.map((i) => i.id)).toEqual([busyboxImage().config.digest]);
    expect(ls(path.join(root, 'images'))).toEqual([`${hexOf(busyboxImage().config.digest)}.json`]);
    // No blob and no layer of the big image: not its manifest, config or layer.
    const blobs = ls(path.join(root, 'content', 'blobs', 'sha256'));
    for (const d of [big.manifest.digest, big.config.digest, big.layers[0].digest]) expect(blobs).not.toContain(hexOf(d));
    expect(ls(path.join(root, 'layers'))).not.toContain(hexOf(chainIds(big.layers.map((l) => l.diffId))[0]));
    // The space it took is free again (a page or two of slack for the directories' entries).
    expect(free().bfree).toBeGreaterThanOrEqual(before.bfree - 4);

    // busybox is whole: its record, its blobs (each matching its digest) and its unpacked layer.
    const status = (await berthd!.client.image.ImageStatus({ image: { image: busybox } })).image;
    expect(status?.id).toBe(busyboxImage().config.digest);
    const bb = busyboxImage();
    for (const d of [bb.manifest.digest, bb.config.digest, bb.layers[0].digest]) {
      expect(sha256File(path.join(root, 'content', 'blobs', 'sha256', hexOf(d)))).toBe(d);
    }
    const layerDir = path.join(root, 'layers', hexOf(chainIds(bb.layers.map((l) => l.diffId))[0]));
    expect(JSON.parse(fs.readFileSync(path.join(layerDir, 'layer.json'), 'utf8'))).toMatchObject({ diffId: bb.layers[0].diffId });
    expect(fs.statSync(path.join(layerDir, 'diff', 'bin', 'busybox')).size).toBe(fs.statSync('/bin/busybox').size);
  });

  it('runs a container of the image that was there before', async () => {
    const config: PodSandboxConfig = { metadata: { name: 'full', namespace: 'default', uid: 'uid-full', attempt: 0 }, hostname: 'full', log_directory: path.join(dir, 'logs') };
    pod = { id: (await rt().RunPodSandbox({ config })).pod_sandbox_id, config };
    await runToExit(ctrConfig('first', 'echo still-works; head -1 /etc/passwd; echo data > /tmp/x && cat /tmp/x'));
    expect(logOf('first')).toMatch(/still-works[\s\S]*root:x:0:0[\s\S]*data/);
  });

  /** CreateContainer without room: a clear error (not INTERNAL or UNKNOWN), and nothing of it left. */
  async function createFailsCleanly(name: string): Promise<grpc.ServiceError> {
    const traces = containerTraces();
    const listed = (await rt().ListContainers({})).containers.map((c) => c.id).sort();
    const err = await createContainer(ctrConfig(name, 'true')).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err, 'CreateContainer succeeded on a full disk').toBeDefined();
    // No record (listed or on disk, temp files included), no dir under the root or the state dir, no mount.
    expect((await rt().ListContainers({})).containers.map((c) => c.id).sort()).toEqual(listed);
    expect(containerTraces()).toEqual(traces);
    // A clear error: never INTERNAL or UNKNOWN, and RESOURCE_EXHAUSTED saying the disk is full.
    const got = `${grpc.status[err!.code]}: ${err!.details}`;
    expect.soft([grpc.status.INTERNAL, grpc.status.UNKNOWN], got).not.toContain(err!.code);
    expect.soft(err!.code, got).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect.soft(err!.details).toMatch(/no space left on device|ENOSPC/i);
    return err!;
  }

  it('fails CreateContainer cleanly when not even its record fits', async () => {
    try {
      fillBlocks('blocks');
      await createFailsCleanly('no-blocks');
    } finally {
      emptyFillers();
    }
  });

  // Every point of CreateContainer where the root can run out of inodes, in order: 0, the record; 1, the
  // container's dir; 2-4, its writable layer's (fs/, fs/upper, fs/work); 5, overlayfs's work/work
  // (overlayfs then mounts read-only rather than fail); 6-8, the overlay mount itself; 9-12, the files
  // the runtime makes in the rootfs (mount points, /etc/hostname, /etc/hosts, /etc/resolv.conf).
  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])('fails CreateContainer cleanly when only %i inodes are free', async (left) => {
    try {
      fillInodes(left);
      await createFailsCleanly(`no-inodes-${left}`);
    } finally {
      emptyFillers();
    }
  });

  it('creates and runs a container again once there is room', async () => {
    const id = await runToExit(ctrConfig('again', 'echo room-again'));
    expect(logOf('again')).toContain('room-again');
    expect((await rt().ListContainers({})).containers.map((c) => c.metadata?.name).sort()).toEqual(['again', 'first']);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
  });
});
