// An OCI bundle for a new container: the rootfs overlay over its image's layers, and config.json built
// from the CRI config, the pod and the image config. teardownContainer undoes it (derived from the id).
import fs from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../errors';
import type { ImageConfigJson } from '../image/image-service';
import type { SandboxRecord } from '../pod/sandbox';
import { mountImageVolume, mountRootfs, rootfsLayout, type RootfsIdmap, type RootfsLayout } from '../storage/rootfs';
import { writeFileAtomic } from '../state/atomic-file';
import { failpoint } from '../state/failpoints';
import type { ContainerSpec } from './container';
import { parseSeccompProfile } from './seccomp-profile';
import { cgroupLayout } from '../cgroups/layout';
import { hostCapabilities } from './defaults';
import { buildOciSpec, type ImageConfigView, type OciMount, type OciSpec, type PodView } from './oci-spec';
import type { CdiEdits } from './cdi';
import { containerDevices } from './devices';
import { appArmorProfileFor } from './apparmor';
import { readFileInRoot, resolveInRoot } from './rootfs-files';
import { parseGroup, parsePasswd, resolveUser } from './users';

export interface BundleInput {
  id: string;
  spec: ContainerSpec;
  pod: SandboxRecord;
  imageConfig: ImageConfigJson;
  /** Layer trees, base layer first. */
  lowerDirs: string[];
  /** The image volumes' layer trees (base first), by the index of their mount. */
  imageVolumes: Array<{ mount: number; lowerDirs: string[] }>;
  emptyDir: string;
  containerDir: string;
  bundleDir: string;
  /** linux.cgroupsPath, in the cgroup driver's form. */
  cgroupsPath: string;
  minOomScoreAdj: number;
  /** The init of the target container of a TARGET PID namespace. */
  targetPid?: number;
  /** What the container's CDI devices add (resolved before the intent record). */
  cdi: CdiEdits;
}

export interface Bundle {
  rootfs: RootfsLayout;
  spec: OciSpec;
}

type ImageConfigBody = ImageConfigView & { User?: string; StopSignal?: string };

export const imageConfigBody = (config: ImageConfigJson): ImageConfigBody => (config.config ?? {}) as ImageConfigBody;

function podView(pod: SandboxRecord, cgroupsPath: string, minOomScoreAdj: number): PodView {
  const files = { hostname: path.join(pod.stateDir, 'hostname'), hosts: path.join(pod.stateDir, 'hosts'), resolvConf: path.join(pod.stateDir, 'resolv.conf') };
  return {
    hostname: pod.spec.hostname || (pod.spec.namespaces.network === 'node' ? '' : pod.spec.name.slice(0, 63)),
    netns: pod.pins.net,
    ipcns: pod.pins.ipc,
    utsns: pod.pins.uts,
    pidns: pod.pins.pid,
    ...podUserns(pod),
    files,
    shm: pod.shm,
    cgroupsPath,
    cgroupV2: cgroupLayout().unified !== undefined,
    minOomScoreAdj,
  };
}

/** A CDI mount as an OCI mount: a bind unless the spec names another type. */
function cdiMount(m: CdiEdits['mounts'][number]): OciMount {
  const type = m.type ?? 'bind';
  const options = type === 'bind' && !m.options.some((o) => o === 'bind' || o === 'rbind') ? ['rbind', ...m.options] : m.options;
  return { destination: m.containerPath, type, source: m.hostPath, options };
}

/**
 * Each image volume mounted read-only in the bundle; the source its mount binds is its sub path, resolved
 * inside the image (a symlink in a hostile image cannot lead out of it), which must exist.
 */
async function mountImageVolumes(input: BundleInput, idmap: RootfsIdmap | undefined): Promise<Map<number, string>> {
  const sources = new Map<number, string>();
  for (const v of input.imageVolumes) {
    const m = input.spec.process.mounts[v.mount];
    const root = await mountImageVolume(input.bundleDir, v.mount, v.lowerDirs, input.emptyDir, idmap);
    const source = m.image?.subPath ? await resolveInRoot(root, m.image.subPath) : root;
    if (!(await fs.lstat(source).catch(() => undefined))) {
      throw new InvalidArgumentError(`mounts[${v.mount}].image_sub_path ${JSON.stringify(m.image?.subPath)} does not exist in image ${JSON.stringify(m.image?.ref)}`);
    }
    sources.set(v.mount, source);
  }
  return sources;
}

/** CRI host paths: a symlink is resolved; a missing path is made as a directory (as containerd does). */
async function resolveMountSources(spec: ContainerSpec, volumeSources: Map<number, string>): Promise<ContainerSpec['process']['mounts']> {
  const out: ContainerSpec['process']['mounts'] = [];
  for (const [i, m] of spec.process.mounts.entries()) {
    const volume = volumeSources.get(i);
    if (m.image) {
      if (volume === undefined) throw new Error(`image volume mounts[${i}] was not mounted`);
      out.push({ ...m, hostPath: volume, readonly: true });
      continue;
    }
    if (!m.hostPath.startsWith('/')) throw new InvalidArgumentError(`mount host_path ${JSON.stringify(m.hostPath)} is not absolute`);
    let source = await fs.realpath(m.hostPath).catch(() => undefined);
    if (!source) {
      await fs.mkdir(m.hostPath, { recursive: true, mode: 0o755 });
      source = await fs.realpath(m.hostPath);
    }
    out.push({ ...m, hostPath: source });
  }
  return out;
}

async function seccompProfile(spec: ContainerSpec): Promise<ContainerSpec['process']['seccomp']> {
  if (spec.process.seccomp.kind !== 'localhost') return spec.process.seccomp;
  const file = spec.seccompProfilePath;
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`seccomp profile ${JSON.stringify(file)} cannot be read: ${(err as Error).message}`);
  }
  return { kind: 'localhost', profile: parseSeccompProfile(text, file) };
}

/** The pod's user namespace, if it has one; a pod that should have one but has no pin is an error, never the host's. */
function podUserns(pod: SandboxRecord): Pick<PodView, 'userns'> {
  if (!pod.spec.userns) return {};
  if (!pod.pins.user) throw new FailedPreconditionError(`pod sandbox ${pod.id} has lost its user namespace: recreate it`);
  return { userns: { path: pod.pins.user, maps: pod.spec.userns } };
}

export async function createBundle(input: BundleInput): Promise<Bundle> {
  const { spec, pod } = input;
  await fs.mkdir(input.bundleDir, { recursive: true, mode: 0o711 });
  const rootfs = rootfsLayout(input.containerDir, input.bundleDir);
  const { userns } = podUserns(pod);
  const idmap = userns && { usernsPath: userns.path, uid: userns.maps.uids.hostId, gid: userns.maps.gids.hostId };
  await mountRootfs(rootfs, input.lowerDirs, input.emptyDir, idmap);
  failpoint('container.after-mount');
  const volumeSources = await mountImageVolumes(input, idmap);

  const image = imageConfigBody(input.imageConfig);
  const [passwd, group] = await Promise.all([readFileInRoot(rootfs.target, '/etc/passwd'), readFileInRoot(rootfs.target, '/etc/group')]);
  const resolved = resolveUser({ imageUser: image.User ?? '', ...spec.user }, parsePasswd(passwd), parseGroup(group));
  const user = { ...resolved, additionalGids: [...new Set([...resolved.additionalGids, ...input.cdi.additionalGids])] };
  const request = {
    ...spec.process,
    env: [...spec.process.env, ...input.cdi.env],
    mounts: await resolveMountSources(spec, volumeSources),
    seccomp: await seccompProfile(spec),
    devices: await containerDevices(spec, input.cdi),
    appArmorProfile: await appArmorProfileFor(spec.process.appArmor ?? { kind: 'runtime-default' }, spec.process.privileged),
    extraMounts: input.cdi.mounts.map(cdiMount),
  };
  const view = podView(pod, input.cgroupsPath, input.minOomScoreAdj);
  // A pod without a PID namespace of its own gives each container one (never the host's by accident).
  if (request.pidNamespace === 'pod' && !view.pidns) request.pidNamespace = 'container';
  if (request.pidNamespace === 'target') {
    if (!input.targetPid) throw new InvalidArgumentError(`PID namespace target ${JSON.stringify(spec.pidTarget)} is not a running container`);
    view.pidns = `/proc/${input.targetPid}/ns/pid`;
    request.pidNamespace = 'pod';
  }
  const oci = buildOciSpec(request, image, view, user, rootfs.target, hostCapabilities());
  if (!oci.process.env.some((e) => e.startsWith('HOME='))) oci.process.env.push(`HOME=${user.home}`);
  oci.annotations = { ...spec.annotations, 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': pod.id };
  await writeFileAtomic(path.join(input.bundleDir, 'config.json'), JSON.stringify(oci), 0o600);
  return { rootfs, spec: oci };
}
