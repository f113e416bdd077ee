// CDI (the Container Device Interface, github.com/cncf-tags/container-device-interface): devices named
// "vendor.com/class=name" in a CreateContainer (CDI_devices, or the cdi.k8s.io/ annotations), resolved from
// the JSON and YAML spec files in the configured directories, and turned into the edits berth applies:
// device nodes, mounts, environment, extra groups. Spec files are read when a container asks for a device,
// never cached: a device plugin may rewrite them at any time. What berth cannot apply (hooks, Intel RDT,
// network devices) is refused, never dropped.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FailedPreconditionError, InvalidArgumentError, messageOf } from '../errors';

/** vendor.com/class=name, as the CDI spec qualifies a device. */
const QUALIFIED = /^([a-zA-Z0-9][a-zA-Z0-9.-]*\/[a-zA-Z0-9][a-zA-Z0-9_.-]*)=([a-zA-Z0-9][a-zA-Z0-9_.:-]*)$/;
const MAX_SPEC_BYTES = 4 << 20;

export interface CdiDeviceNode {
  path: string;
  hostPath: string;
  type?: 'c' | 'b';
  major?: number;
  minor?: number;
  fileMode?: number;
  permissions: string;
  uid?: number;
  gid?: number;
}

export interface CdiMount {
  hostPath: string;
  containerPath: string;
  type?: string;
  options: string[];
}

/** What the requested devices add to a container, in the order their specs give them. */
export interface CdiEdits {
  env: Array<[string, string]>;
  deviceNodes: CdiDeviceNode[];
  mounts: CdiMount[];
  additionalGids: number[];
}

interface ContainerEdits {
  env?: unknown;
  deviceNodes?: unknown;
  mounts?: unknown;
  hooks?: unknown;
  additionalGids?: unknown;
  intelRdt?: unknown;
  netDevices?: unknown;
}

interface SpecDevice {
  spec: string;
  edits: ContainerEdits;
  specEdits: ContainerEdits;
}

/** Checks a device's qualified name (INVALID_ARGUMENT when it is not one). */
export function checkCdiName(field: string, name: string): string {
  if (!QUALIFIED.test(name)) throw new InvalidArgumentError(`${field}: ${JSON.stringify(name)} is not a CDI device name (vendor.com/class=name)`);
  return name;
}

/** The device names of the CDI annotations (cdi.k8s.io/<key>: "vendor.com/class=a,vendor.com/class=b"). */
export function cdiAnnotationDevices(annotations: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith('cdi.k8s.io/')) continue;
    for (const name of value.split(',').map((n) => n.trim()).filter(Boolean)) out.push(checkCdiName(`annotation ${key}`, name));
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Every device of the spec files in `dirs`, by qualified name. A later directory wins over an earlier one
 * (/var/run/cdi over /etc/cdi, as the CDI spec orders them); the same device twice in one directory is a
 * conflict, and a spec file that does not parse is an error naming it (only when a container asks for
 * one of the devices: see resolveCdiDevices).
 */
async function loadSpecs(dirs: readonly string[]): Promise<{ devices: Map<string, SpecDevice>; broken: string[] }> {
  const devices = new Map<string, SpecDevice>();
  const broken: string[] = [];
  for (const dir of dirs) {
    const inDir = new Map<string, string>();
    const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /\.(json|ya?ml)$/.test(n)).sort();
    for (const name of names) {
      const file = path.join(dir, name);
      let spec: unknown;
      try {
        const st = await fs.stat(file);
        if (!st.isFile() || st.size > MAX_SPEC_BYTES) throw new Error(`not a regular file of at most ${MAX_SPEC_BYTES} bytes`);
        const text = await fs.readFile(file, 'utf8');
        spec = name.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
      } catch (err) {
        broken.push(`${file}: ${messageOf(err)}`);
        continue;
      }
      if (!isObject(spec) || typeof spec.kind !== 'string' || !Array.isArray(spec.devices) || typeof spec.cdiVersion !== 'string') {
        broken.push(`${file}: not a CDI spec (cdiVersion, kind and devices are required)`);
        continue;
      }
      const specEdits = isObject(spec.containerEdits) ? (spec.containerEdits as ContainerEdits) : {};
      for (const d of spec.devices) {
        if (!isObject(d) || typeof d.name !== 'string') {
          broken.push(`${file}: a device without a name`);
          continue;
        }
        const qualified = `${spec.kind}=${d.name}`;
        if (!QUALIFIED.test(qualified)) {
          broken.push(`${file}: ${JSON.stringify(qualified)} is not a CDI device name`);
          continue;
        }
        const other = inDir.get(qualified);
        if (other) throw new FailedPreconditionError(`CDI device ${qualified} is defined twice in ${dir} (${other} and ${name})`);
        inDir.set(qualified, name);
        devices.set(qualified, { spec: file, edits: isObject(d.containerEdits) ? (d.containerEdits as ContainerEdits) : {}, specEdits });
      }
    }
  }
  return { devices, broken };
}

function stringList(where: string, v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new FailedPreconditionError(`${where}: expected a list of strings`);
  return v;
}

function optionalInt(where: string, v: unknown, max = 2 ** 32 - 1): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new FailedPreconditionError(`${where}: expected an integer from 0 to ${max}`);
  return v;
}

function absolute(where: string, v: unknown): string {
  if (typeof v !== 'string' || !path.isAbsolute(v) || path.posix.normalize(v) !== v) {
    throw new FailedPreconditionError(`${where}: ${JSON.stringify(v)} is not an absolute, clean path`);
  }
  return v;
}

/** One spec's or device's containerEdits added to `out`; what berth cannot apply is an error. */
function addEdits(out: CdiEdits, edits: ContainerEdits, where: string): void {
  for (const unsupported of ['hooks', 'intelRdt', 'netDevices'] as const) {
    const v = edits[unsupported];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) {
      throw new FailedPreconditionError(`${where} asks for ${unsupported}, which berth does not apply`);
    }
  }
  for (const kv of stringList(`${where} env`, edits.env)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new FailedPreconditionError(`${where} env ${JSON.stringify(kv)} is not NAME=VALUE`);
    out.env.push([kv.slice(0, eq), kv.slice(eq + 1)]);
  }
  const nodes = edits.deviceNodes ?? [];
  if (!Array.isArray(nodes)) throw new FailedPreconditionError(`${where} deviceNodes: expected a list`);
  nodes.forEach((n: unknown, i) => {
    const at = `${where} deviceNodes[${i}]`;
    if (!isObject(n)) throw new FailedPreconditionError(`${at}: expected an object`);
    const p = absolute(`${at}.path`, n.path);
    const type = n.type === undefined || n.type === '' ? undefined : n.type;
    if (type !== undefined && type !== 'c' && type !== 'b') throw new FailedPreconditionError(`${at}.type ${JSON.stringify(type)}: berth injects character and block devices`);
    const permissions = n.permissions === undefined || n.permissions === '' ? 'rwm' : n.permissions;
    if (typeof permissions !== 'string' || !/^[rwm]+$/.test(permissions)) throw new FailedPreconditionError(`${at}.permissions ${JSON.stringify(permissions)} are not of "rwm"`);
    out.deviceNodes.push({
      path: p,
      hostPath: n.hostPath === undefined || n.hostPath === '' ? p : absolute(`${at}.hostPath`, n.hostPath),
      ...(type ? { type } : {}),
      major: optionalInt(`${at}.major`, n.major),
      minor: optionalInt(`${at}.minor`, n.minor),
      fileMode: optionalInt(`${at}.fileMode`, n.fileMode, 0o7777),
      permissions,
      uid: optionalInt(`${at}.uid`, n.uid),
      gid: optionalInt(`${at}.gid`, n.gid),
    });
  });
  const mounts = edits.mounts ?? [];
  if (!Array.isArray(mounts)) throw new FailedPreconditionError(`${where} mounts: expected a list`);
  mounts.forEach((m: unknown, i) => {
    const at = `${where} mounts[${i}]`;
    if (!isObject(m)) throw new FailedPreconditionError(`${at}: expected an object`);
    if (m.type !== undefined && typeof m.type !== 'string') throw new FailedPreconditionError(`${at}.type: expected a string`);
    out.mounts.push({
      hostPath: absolute(`${at}.hostPath`, m.hostPath),
      containerPath: absolute(`${at}.containerPath`, m.containerPath),
      ...(m.type ? { type: m.type as string } : {}),
      options: stringList(`${at}.options`, m.options),
    });
  });
  const gids = edits.additionalGids ?? [];
  if (!Array.isArray(gids)) throw new FailedPreconditionError(`${where} additionalGids: expected a list`);
  gids.forEach((g: unknown, i) => out.additionalGids.push(optionalInt(`${where} additionalGids[${i}]`, g) as number));
}

/**
 * The edits for `names` (qualified, checked), from the spec files in `dirs`: each spec's own edits once,
 * then each device's. A device no spec defines is FAILED_PRECONDITION (this node lacks it), naming the
 * spec files that did not parse, if any (one of them may have been meant to define it).
 */
export async function resolveCdiDevices(dirs: readonly string[], names: readonly string[]): Promise<CdiEdits> {
  const out: CdiEdits = { env: [], deviceNodes: [], mounts: [], additionalGids: [] };
  if (names.length === 0) return out;
  const { devices, broken } = await loadSpecs(dirs);
  const specsApplied = new Set<string>();
  for (const name of new Set(names)) {
    const device = devices.get(name);
    if (!device) {
      throw new FailedPreconditionError(`CDI device ${name} is not defined by any spec in ${dirs.join(', ')}${broken.length ? `; spec files that do not parse: ${broken.join('; ')}` : ''}`);
    }
    if (!specsApplied.has(device.spec)) {
      specsApplied.add(device.spec);
      addEdits(out, device.specEdits, `CDI spec ${device.spec}`);
    }
    addEdits(out, device.edits, `CDI device ${name} (${device.spec})`);
  }
  return out;
}
