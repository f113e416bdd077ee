// Importing images from archives, for air-gapped nodes: OCI image layouts (`oci-layout`, `index.json`,
// `blobs/sha256/…`) and `docker save` archives (`manifest.json` with Config, RepoTags and Layers), tar
// or gzip-compressed tar. Every blob enters the content store through the same verified ingest as a
// pull; the archive itself is never trusted (entries are read by path, never extracted as given).
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, ResourceExhaustedError } from '../errors';
import type { ContentStore } from './content-store';
import type { ImageRecord } from './image-store';
import { formatReference, parseReference, repositoryName } from './reference';
import { expectImageManifest, manifestKind, MAX_MANIFEST_BYTES, MEDIA_TYPES, parseIndex, selectPlatform, type Descriptor } from './registry/manifest';
import type { ImageNames, Puller } from './pull';
import { decompressed } from './unpack/decompress';
import { cleanEntryPath, TarReader } from './unpack/tar-parser';

const NAME_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name'];
const MAX_ARCHIVE_FILES = 100_000;

interface Staged {
  dir: string;
  /** Archive paths of regular files, and symlinks as path → target (docker save links shared layers). */
  files: Set<string>;
  links: Map<string, string>;
}

/** Copies the archive's regular files into a private staging dir under their cleaned names. */
async function stage(file: string, stagingRoot: string): Promise<Staged> {
  const dir = path.join(stagingRoot, `import-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const staged: Staged = { dir, files: new Set(), links: new Map() };
  const tarStream = await decompressed(fs.createReadStream(file), 'application/vnd.oci.image.layer.v1.tar');
  const reader = new TarReader(tarStream);
  let count = 0;
  for (let h = await reader.next(); h; h = await reader.next()) {
    if (++count > MAX_ARCHIVE_FILES) throw new InvalidArgumentError(`archive ${file} has more than ${MAX_ARCHIVE_FILES} entries`);
    const rel = cleanEntryPath(h.path).join('/');
    if (!rel) continue;
    if (h.type === 'symlink') {
      staged.links.set(rel, path.posix.normalize(path.posix.join(path.posix.dirname(rel), h.linkpath)));
    } else if (h.type === 'file') {
      // Flat names in the staging dir: no directory of the archive is ever recreated.
      const out = await fsp.open(path.join(dir, encodeURIComponent(rel)), 'wx', 0o600);
      try {
        await reader.readBody(async (chunk) => {
          await out.write(chunk);
        });
      } finally {
        await out.close();
      }
      staged.files.add(rel);
    }
  }
  return staged;
}

function resolveStaged(staged: Staged, rel: string): string {
  let current = path.posix.normalize(rel);
  for (let hops = 0; hops < 16; hops++) {
    if (staged.files.has(current)) return path.join(staged.dir, encodeURIComponent(current));
    const target = staged.links.get(current);
    if (!target) break;
    current = target;
  }
  throw new InvalidArgumentError(`archive has no file ${JSON.stringify(rel)}`);
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function ingestFile(content: ContentStore, file: string, digest: string): Promise<void> {
  const { size } = await fsp.stat(file);
  await content.ingest(digest, size, fs.createReadStream(file));
}

/** Names from a descriptor's annotations: a full reference, or a tag joined to nothing (ignored). */
function namesFrom(desc: { annotations?: Record<string, string> }): ImageNames {
  const repoTags: string[] = [];
  for (const key of NAME_ANNOTATIONS) {
    const value = desc.annotations?.[key];
    if (!value || !/[/:]/.test(value)) continue;
    try {
      const ref = parseReference(value);
      if (ref.tag) repoTags.push(formatReference({ ...ref, digest: undefined }));
      break;
    } catch {
      // not a reference (e.g. a bare tag in org.opencontainers.image.ref.name)
    }
  }
  return { repoTags, repoDigests: [] };
}

/** A manifest, index or index.json of an archive, refused when it is larger than a registry may serve one. */
async function readManifestFile(file: string): Promise<Buffer> {
  const { size } = await fsp.stat(file);
  if (size > MAX_MANIFEST_BYTES) throw new ResourceExhaustedError(`${path.basename(file)} is ${size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit of a manifest`);
  return fsp.readFile(file);
}

async function importOciLayout(staged: Staged, content: ContentStore, puller: Puller, platform: string): Promise<ImageRecord[]> {
  const blobPath = (digest: string) => resolveStaged(staged, `blobs/sha256/${digest.replace(/^sha256:/, '')}`);
  // Every blob of the layout enters the store verified against the digest it is filed under.
  for (const rel of staged.files) {
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(rel);
    if (m) await ingestFile(content, path.join(staged.dir, encodeURIComponent(rel)), `sha256:${m[1]}`);
  }
  const index = JSON.parse((await readManifestFile(resolveStaged(staged, 'index.json'))).toString('utf8')) as {
    manifests?: Array<Descriptor & { annotations?: Record<string, string> }>;
  };
  const records: ImageRecord[] = [];
  for (const desc of index.manifests ?? []) {
    const names = namesFrom(desc);
    const manifestDigests = [desc.digest];
    let body = await readManifestFile(blobPath(desc.digest));
    if (manifestKind(desc.mediaType, body) === 'index') {
      const chosen = selectPlatform(parseIndex(body), platform, names.repoTags[0] ?? desc.digest);
      manifestDigests.push(chosen.digest);
      body = await readManifestFile(blobPath(chosen.digest));
      expectImageManifest(chosen.mediaType, body, chosen.digest);
    }
    names.repoDigests = names.repoTags.map((t) => `${repositoryName(parseReference(t))}@${desc.digest}`);
    records.push(await puller.storeImage(body, manifestDigests, names));
  }
  return records;
}

interface DockerSaveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

async function importDockerSave(staged: Staged, content: ContentStore, puller: Puller): Promise<ImageRecord[]> {
  const entries = JSON.parse(await fsp.readFile(resolveStaged(staged, 'manifest.json'), 'utf8')) as DockerSaveEntry[];
  if (!Array.isArray(entries)) throw new InvalidArgumentError('manifest.json of the archive is not a list');
  const records: ImageRecord[] = [];
  for (const entry of entries) {
    const configFile = resolveStaged(staged, entry.Config);
    const configDigest = await sha256File(configFile);
    await ingestFile(content, configFile, configDigest);
    const layers: Descriptor[] = [];
    for (const layerPath of entry.Layers) {
      const file = resolveStaged(staged, layerPath);
      const digest = await sha256File(file);
      await ingestFile(content, file, digest);
      const head = Buffer.alloc(2);
      const fd = await fsp.open(file, 'r');
      await fd.read(head, 0, 2, 0);
      await fd.close();
      const gzip = head[0] === 0x1f && head[1] === 0x8b;
      layers.push({
        mediaType: gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
        digest,
        size: (await fsp.stat(file)).size,
      });
    }
    // A docker save archive has no manifest: berth writes the OCI manifest the layers and config make.
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: (await fsp.stat(configFile)).size },
        layers,
      }),
    );
    const manifestDigest = await content.writeBlob(manifest);
    const repoTags = (entry.RepoTags ?? []).map((t) => formatReference({ ...parseReference(t), digest: undefined }));
    records.push(await puller.storeImage(manifest, [manifestDigest], { repoTags, repoDigests: [] }));
  }
  return records;
}

export async function importArchive(file: string, stagingRoot: string, content: ContentStore, puller: Puller, platform: string): Promise<ImageRecord[]> {
  const staged = await stage(file, stagingRoot);
  try {
    if (staged.files.has('index.json')) return await importOciLayout(staged, content, puller, platform);
    if (staged.files.has('manifest.json')) return await importDockerSave(staged, content, puller);
    throw new InvalidArgumentError(`${file} is neither an OCI image layout (index.json) nor a docker save archive (manifest.json)`);
  } finally {
    await fsp.rm(staged.dir, { recursive: true, force: true });
  }
}
