// Building blocks of the critest images: a root filesystem assembled from host files (binaries with
// the shared libraries `ldd` names, config files written here, hard links), and Debian packages that
// cannot be installed next to berth's own (Debian's dynamic `busybox` conflicts with busybox-static),
// fetched with `apt-get download` into a cache and unpacked with `dpkg-deb -x`, never installed.
// Deterministic: entries sorted, owned by root unless stated, stamped with EPOCH.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostFile } from '../../../test/support/oci/host';
import type { TarCommon, TarEntry } from '../../../test/support/oci/tar';

type Attrs = Partial<Pick<TarCommon, 'mode' | 'uid' | 'gid'>>;

/**
 * A root filesystem in the making, keyed by path (no leading slash). Parent directories are added as
 * needed; `entries()` lists directories, files and symlinks sorted by path, then hard links (a hard
 * link's target must come before it in a tar).
 */
export class Rootfs {
  private readonly nodes = new Map<string, TarEntry>();
  private readonly links = new Map<string, TarEntry>();

  dir(p: string, attrs: Attrs = {}): this {
    const clean = trim(p);
    this.parents(clean);
    this.nodes.set(clean, { type: 'dir', path: `${clean}/`, ...attrs });
    return this;
  }

  file(p: string, content: Buffer | string, attrs: Attrs = {}): this {
    return this.put({ type: 'file', path: trim(p), content, ...attrs });
  }

  /** A host file's content (symlinks followed) at `p` in the image; mode from the host unless given. */
  hostFile(hostPath: string, p: string = hostPath, attrs: Attrs = {}): this {
    const entry = hostFile(fs.realpathSync(hostPath), trim(p), { uid: 0, gid: 0, ...attrs });
    return this.put(entry);
  }

  symlink(p: string, target: string): this {
    return this.put({ type: 'symlink', path: trim(p), target });
  }

  /** A hard link at `p` to the file at `target` (which must be in this rootfs). */
  hardlink(p: string, target: string): this {
    const clean = trim(p);
    this.parents(clean);
    this.nodes.delete(clean);
    this.links.set(clean, { type: 'hardlink', path: clean, target: trim(target) });
    return this;
  }

  /** A host ELF binary and every shared library and the interpreter it needs (as `ldd` lists them). */
  binary(hostPath: string, p: string = hostPath, attrs: Attrs = {}): this {
    this.hostFile(hostPath, p, attrs);
    return this.libraries(hostPath);
  }

  /** The shared libraries of a host ELF file (a binary or a module), at the paths `ldd` shows. */
  libraries(hostPath: string): this {
    for (const lib of sharedLibraries(hostPath)) if (!this.has(lib)) this.hostFile(lib, lib, { mode: 0o755 });
    return this;
  }

  has(p: string): boolean {
    const clean = trim(p);
    return this.nodes.has(clean) || this.links.has(clean);
  }

  /** Removes the paths another layer below already holds with the same content (files only). */
  without(below: Rootfs): this {
    for (const [p, e] of this.nodes) {
      const other = below.nodes.get(p);
      if (e.type === 'file' && other?.type === 'file' && Buffer.from(other.content).equals(Buffer.from(e.content))) this.nodes.delete(p);
    }
    return this;
  }

  entries(): TarEntry[] {
    const byPath = (a: TarEntry, b: TarEntry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    return [...[...this.nodes.values()].sort(byPath), ...[...this.links.values()].map((l) => this.withTargetAttrs(l)).sort(byPath)];
  }

  /**
   * A hard link's header carries its file's mode, owner and mtime, as Docker's and Go's tar writers put them:
   * containerd applies a link entry's mode to the shared inode, so a default 0644 there would make the file
   * (busybox and every applet) non-executable.
   */
  private withTargetAttrs(link: TarEntry): TarEntry {
    const target = link.type === 'hardlink' ? this.nodes.get(link.target) : undefined;
    if (target?.type !== 'file') return link;
    return { ...link, mode: target.mode, uid: target.uid, gid: target.gid, mtime: target.mtime };
  }

  private put(entry: TarEntry): this {
    this.parents(entry.path);
    this.links.delete(entry.path);
    this.nodes.set(entry.path, entry);
    return this;
  }

  private parents(p: string): void {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!this.nodes.has(dir)) this.nodes.set(dir, { type: 'dir', path: `${dir}/` });
    }
  }
}

function trim(p: string): string {
  return p.replace(/^\/+|\/+$/g, '');
}

/** The absolute paths of the shared libraries and the ELF interpreter `ldd` reports, sorted. */
export function sharedLibraries(hostPath: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [hostPath], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const text = `${(err as { stdout?: string }).stdout ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new Error(`ldd ${hostPath} failed: ${(err as Error).message}`);
  }
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    if (/not found/.test(line)) throw new Error(`ldd ${hostPath}: ${line.trim()}`);
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]);
  }
  return [...libs].sort();
}

/** Where downloaded .debs and their unpacked trees are kept (BERTH_DEB_CACHE overrides). */
export function debCacheDir(): string {
  return process.env.BERTH_DEB_CACHE ?? path.join(os.tmpdir(), 'berth-debs');
}

function aptVersion(pkg: string): string {
  const installed = (name: string) => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  return installed(pkg);
}

/**
 * The unpacked tree of a Debian package (not installed): `version` defaults to the version installed
 * of `sameVersionAs` (so that, e.g., the dynamic busybox matches the installed busybox-static), else
 * the candidate apt would install. Downloaded once with `apt-get download` into debCacheDir().
 */
export function debPackageRoot(pkg: string, opts: { version?: string; sameVersionAs?: string } = {}): string {
  const cache = debCacheDir();
  fs.mkdirSync(cache, { recursive: true });
  const version = opts.version ?? (opts.sameVersionAs ? aptVersion(opts.sameVersionAs) : '');
  const spec = version ? `${pkg}=${version}` : pkg;
  const tag = `${pkg}_${(version || 'candidate').replace(/[^A-Za-z0-9.+~-]/g, '_')}`;
  const root = path.join(cache, tag);
  if (fs.existsSync(path.join(root, '.complete'))) return root;
  const before = new Set(fs.readdirSync(cache));
  const debName = () => fs.readdirSync(cache).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb') && (!version || decodeURIComponent(f).includes(`_${version}_`)));
  let deb = debName();
  if (!deb) {
    const download = (what: string) => execFileSync('apt-get', ['download', '-q', what], { cwd: cache, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    try {
      try {
        download(spec);
      } catch {
        // The pinned version may be gone from the mirror, or apt's lists missing or stale (a fresh
        // machine whose packages were all there): refresh the lists once and take apt's candidate.
        execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
        download(pkg);
      }
    } catch (err) {
      const stderr = `${(err as { stderr?: Buffer }).stderr ?? ''}`.trim();
      throw new Error(`apt-get download ${spec} failed (Debian's package mirror must be reachable once; the .deb is then cached in ${cache}): ${stderr || (err as Error).message}`);
    }
    deb = debName() ?? fs.readdirSync(cache).find((f) => !before.has(f) && f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${spec} left no .deb in ${cache}`);
  }
  const tmp = `${root}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  execFileSync('dpkg-deb', ['-x', path.join(cache, deb), tmp], { stdio: ['ignore', 'pipe', 'pipe'] });
  fs.writeFileSync(path.join(tmp, '.complete'), `${deb}\n`);
  try {
    if (fs.existsSync(root) && !fs.existsSync(path.join(root, '.complete'))) fs.rmSync(root, { recursive: true, force: true });
    fs.renameSync(tmp, root);
  } catch (err) {
    // Another build (a test and hack/critest.sh at once) unpacked it first: use that one.
    if (!fs.existsSync(path.join(root, '.complete'))) throw err;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return root;
}

/** Compiles one C source with the host's gcc into a static binary; returns its bytes. */
export function compileStatic(name: string, source: string): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cc-'));
  try {
    const src = path.join(dir, `${name}.c`);
    const out = path.join(dir, name);
    fs.writeFileSync(src, source);
    // -ffile-prefix-map and no build-id: the same source and compiler give the same bytes from any temp dir.
    execFileSync('gcc', ['-static', '-O2', '-s', `-ffile-prefix-map=${dir}=.`, '-Wl,--build-id=none', '-o', out, src], { stdio: ['ignore', 'pipe', 'pipe'] });
    return fs.readFileSync(out);
  } catch (err) {
    throw new Error(`gcc failed building ${name} (install build-essential): ${`${(err as { stderr?: Buffer }).stderr ?? ''}`.trim() || (err as Error).message}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
