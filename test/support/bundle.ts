// OCI bundles for tests that drive a runtime directly (no berthd): a busybox rootfs berth unpacked,
// the pod files a container bind-mounts, and specs from berth's CRI-to-OCI translation for a
// container with namespaces of its own (no pod to join).
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { busyboxEntries } from '../../hack/images/busybox';
import { buildOciSpec, type ContainerRequest, type OciSpec } from '../../src/container/oci-spec';
import type { ResolvedUser } from '../../src/container/users';
import { unpackLayer } from '../../src/image/unpack/unpack-layer';
import { tar } from './oci/tar';

/** Unpacks busybox into rootfs, and writes hostname ("box"), hosts and resolv.conf into filesDir. */
export async function busyboxRootfs(rootfs: string, filesDir: string): Promise<void> {
  fs.mkdirSync(rootfs, { recursive: true });
  const blob = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-busybox-')), 'layer.tar');
  try {
    fs.writeFileSync(blob, tar(busyboxEntries()));
    await unpackLayer(blob, 'application/vnd.oci.image.layer.v1.tar', rootfs, { limits: { maxBytes: 1 << 30, maxEntries: 10_000 } });
  } finally {
    fs.rmSync(path.dirname(blob), { recursive: true, force: true });
  }
  for (const f of ['hostname', 'hosts', 'resolv.conf']) fs.writeFileSync(path.join(filesDir, f), f === 'hostname' ? 'box\n' : '');
}

/** A `sh -c true` container: read-only rootfs, RuntimeDefault seccomp, 64 MiB, its own PID namespace. */
export function containerRequest(over: Partial<ContainerRequest> = {}): ContainerRequest {
  return {
    command: ['sh', '-c'],
    args: ['true'],
    workingDir: '',
    env: [['GREETING', 'hi']],
    mounts: [],
    tty: false,
    stdin: false,
    privileged: false,
    capabilities: { add: [], drop: [] },
    noNewPrivs: true,
    readonlyRootfs: true,
    seccomp: { kind: 'runtime-default' },
    pidNamespace: 'container',
    resources: { memoryLimit: 64 << 20 },
    ...over,
  };
}

/** The spec of a container with new network, IPC and UTS namespaces (hostname "box"); pod files from filesDir. */
export function standaloneSpec(opts: { req: ContainerRequest; rootfs: string; filesDir: string; cgroupsPath: string; user: ResolvedUser; env?: string[] }): OciSpec {
  const { filesDir } = opts;
  const spec = buildOciSpec(
    opts.req,
    { Cmd: ['sh'], Env: opts.env ?? ['PATH=/bin'] },
    {
      hostname: 'box',
      files: { hostname: path.join(filesDir, 'hostname'), hosts: path.join(filesDir, 'hosts'), resolvConf: path.join(filesDir, 'resolv.conf') },
      cgroupsPath: opts.cgroupsPath,
      minOomScoreAdj: 0,
    },
    opts.user,
    opts.rootfs,
  );
  spec.linux.namespaces.push({ type: 'network' }, { type: 'ipc' }, { type: 'uts' });
  // berth sets a hostname only with a pod's UTS namespace to join: here the container has its own.
  spec.hostname = 'box';
  return spec;
}
