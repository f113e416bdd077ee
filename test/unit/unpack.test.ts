// The layer unpacker (berth-unpack, native/unpack) on a real filesystem (a tmpfs, so trusted.* xattrs
// work), entry by entry.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ResourceExhaustedError } from '../../src/errors';
import { unpackLayer } from '../../src/image/unpack/unpack-layer';
import { TarReader } from '../../src/image/unpack/tar-parser';
import { lgetxattr, mount, umount2, MNT_DETACH } from '../../src/native';
import { compress, sha256 } from '../support/oci/image';
import { tar, type TarEntry } from '../support/oci/tar';

const LIMITS = { maxBytes: 64 * 1024 * 1024, maxEntries: 10_000 };

describe('layer unpacker', () => {
  let dir: string;
  let target: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-unpack-'));
    mount('tmpfs', dir, 'tmpfs', 0, 'size=64m');
    target = path.join(dir, 'layer');
    fs.mkdirSync(target);
  });

  afterEach(() => {
    umount2(dir, MNT_DETACH);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The blob lives beside the layer dir, as a content-store blob lives outside the layer store. */
  const unpackBlob = (blob: Buffer, mediaType: string, limits = LIMITS) => {
    const file = path.join(dir, 'blob');
    fs.writeFileSync(file, blob);
    return unpackLayer(file, mediaType, target, { limits }).finally(() => fs.rmSync(file));
  };

  const unpack = (entries: TarEntry[], mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip', limits = LIMITS) => {
    const raw = tar(entries);
    const blob = mediaType.endsWith('gzip') ? zlib.gzipSync(raw) : mediaType.endsWith('zstd') ? compress(raw, 'zstd') : raw;
    return { raw, result: unpackBlob(blob, mediaType, limits) };
  };

  it('writes every entry type with ownership, modes, mtimes and xattrs, and returns the diffID', async () => {
    const longName = `deep/${'x'.repeat(150)}/file`;
    const { raw, result } = unpack([
      { type: 'dir', path: 'etc/', mode: 0o750, uid: 5, gid: 6, mtime: 1_600_000_000 },
      { type: 'file', path: 'etc/conf', content: 'hello', mode: 0o640, uid: 7, gid: 8, mtime: 1_500_000_000, xattrs: { 'user.note': 'n', 'trusted.overlay.opaque': 'y' } },
      { type: 'file', path: longName, content: 'long' },
      { type: 'symlink', path: 'etc/link', target: '/etc/conf', uid: 3, gid: 3 },
      { type: 'hardlink', path: 'etc/hard', target: 'etc/conf' },
      { type: 'char', path: 'dev-null', major: 1, minor: 3, mode: 0o666 },
      { type: 'fifo', path: 'pipe', mode: 0o600 },
      { type: 'file', path: 'sticky', content: '', mode: 0o6755 },
    ]);
    const res = await result;
    expect(res.diffId).toBe(sha256(raw));
    expect(res.uncompressedSize).toBe(raw.length);
    expect(res.entries).toBe(8);
    const etc = fs.statSync(path.join(target, 'etc'));
    expect([etc.mode & 0o7777, etc.uid, etc.gid, etc.mtimeMs / 1000]).toEqual([0o750, 5, 6, 1_600_000_000]);
    const conf = fs.statSync(path.join(target, 'etc/conf'));
    expect([conf.mode & 0o7777, conf.uid, conf.gid, conf.mtimeMs / 1000, conf.nlink]).toEqual([0o640, 7, 8, 1_500_000_000, 2]);
    expect(lgetxattr(path.join(target, 'etc/conf'), 'user.note')?.toString()).toBe('n');
    expect(lgetxattr(path.join(target, 'etc/conf'), 'trusted.overlay.opaque')).toBeNull();
    expect(fs.readFileSync(path.join(target, longName), 'utf8')).toBe('long');
    expect(fs.readlinkSync(path.join(target, 'etc/link'))).toBe('/etc/conf');
    expect(fs.lstatSync(path.join(target, 'etc/link')).uid).toBe(3);
    expect(fs.statSync(path.join(target, 'dev-null')).rdev).toBe(fs.statSync('/dev/null').rdev);
    expect(fs.statSync(path.join(target, 'pipe')).isFIFO()).toBe(true);
    expect(fs.statSync(path.join(target, 'sticky')).mode & 0o7777).toBe(0o6755);
  });

  it('gives the same tree and diffID from gzip, zstd and uncompressed layers', async () => {
    const entries: TarEntry[] = [{ type: 'file', path: 'a/b', content: 'same' }];
    const ids: string[] = [];
    for (const mt of ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar']) {
      fs.rmSync(target, { recursive: true });
      fs.mkdirSync(target);
      ids.push((await unpack(entries, mt).result).diffId);
      expect(fs.readFileSync(path.join(target, 'a/b'), 'utf8')).toBe('same');
    }
    expect(new Set(ids).size).toBe(1);
  });

  it('turns whiteouts into overlay whiteouts and opaque dirs, and later entries replace earlier ones', async () => {
    await unpack([
      { type: 'dir', path: 'd/' },
      { type: 'file', path: 'd/.wh..wh..opq', content: '' },
      { type: 'file', path: '.wh.removed', content: '' },
      { type: 'dir', path: 'was-dir/' },
      { type: 'file', path: 'was-dir/x', content: 'x' },
      { type: 'file', path: 'was-dir', content: 'now a file' },
    ]).result;
    expect(lgetxattr(path.join(target, 'd'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    const wh = fs.lstatSync(path.join(target, 'removed'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(fs.readFileSync(path.join(target, 'was-dir'), 'utf8')).toBe('now a file');
  });

  it.each<[string, TarEntry[]]>([
    ['a parent that is a symlink, even inside the layer', [{ type: 'dir', path: 'real/' }, { type: 'symlink', path: 'alias', target: 'real' }, { type: 'file', path: 'alias/f', content: 'x' }]],
    ['a dir replaced by a symlink, then used as a parent', [{ type: 'dir', path: 'd/' }, { type: 'symlink', path: 'd', target: '/' }, { type: 'file', path: 'd/etc/x', content: 'x' }]],
    ['"d -> .." then d/x', [{ type: 'symlink', path: 'd', target: '..' }, { type: 'file', path: 'd/x', content: 'x' }]],
    ['a name with ..', [{ type: 'file', path: 'a/../../x', content: 'x' }]],
    ['a hard link to a missing target', [{ type: 'hardlink', path: 'h', target: 'nowhere' }]],
    ['a hard link through a symlink', [{ type: 'symlink', path: 's', target: '/etc' }, { type: 'hardlink', path: 'h', target: 's/passwd' }]],
    ['a whiteout of "."', [{ type: 'file', path: 'd/.wh..', content: '' }]],
    ['an absolute name', [{ type: 'file', path: '/etc/x', content: 'x' }]],
  ])('refuses %s', async (_what, entries) => {
    await expect(unpack(entries).result).rejects.toThrow(InvalidArgumentError);
    expect(fs.readdirSync(dir).sort()).toEqual(['layer']);
  });

  it('stops at the entry limit and at the byte limit', async () => {
    const many: TarEntry[] = Array.from({ length: 20 }, (_x, i) => ({ type: 'file', path: `f${i}`, content: '' }));
    await expect(unpack(many, undefined, { maxBytes: 1 << 20, maxEntries: 10 }).result).rejects.toThrow(ResourceExhaustedError);
    fs.rmSync(target, { recursive: true });
    fs.mkdirSync(target);
    const big: TarEntry[] = [{ type: 'file', path: 'big', content: Buffer.alloc(4 << 20) }];
    await expect(unpack(big, undefined, { maxBytes: 1 << 20, maxEntries: 10 }).result).rejects.toThrow(/max_layer_bytes/);
    const written = fs.existsSync(path.join(target, 'big')) ? fs.statSync(path.join(target, 'big')).size : 0;
    expect(written).toBeLessThanOrEqual(1 << 20);
  });

  it('reports corrupt archives clearly', async () => {
    const raw = tar([{ type: 'file', path: 'f', content: 'x' }]);
    raw[10] ^= 0xff; // breaks the header checksum
    await expect(unpackBlob(raw, 'application/vnd.oci.image.layer.v1.tar')).rejects.toThrow(/checksum/);
    const gz = zlib.gzipSync(tar([{ type: 'file', path: 'f', content: 'x'.repeat(1000) }])).subarray(0, 40);
    await expect(unpackBlob(gz, 'application/vnd.oci.image.layer.v1.tar+gzip')).rejects.toThrow(InvalidArgumentError);
  });

  it('parses base-256 numbers and GNU long names', async () => {
    const header = Buffer.from(tar([{ type: 'file', path: 'x', content: '', uid: 1 }]).subarray(0, 512));
    header.fill(0, 108, 116);
    header[108] = 0x80;
    header.writeUInt32BE(3_000_000, 112); // uid 3,000,000 in base-256
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    const longName = `${'n'.repeat(120)}/${'m'.repeat(180)}`;
    const gnu = Buffer.from(tar([{ type: 'file', path: '././@LongLink', content: longName + '\0' }]).subarray(0, 1024));
    gnu[156] = 'L'.charCodeAt(0);
    gnu.fill(0x20, 148, 156);
    let s2 = 0;
    for (const b of gnu.subarray(0, 512)) s2 += b;
    gnu.write(s2.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    const archive = Buffer.concat([header, gnu, tar([{ type: 'file', path: 'short', content: 'y' }])]);
    // berthd's own reader (archives for `images import`) and berth-unpack (layers) read them alike.
    const reader = new TarReader(Readable.from([archive]));
    const first = await reader.next();
    expect(first?.uid).toBe(3_000_000);
    const second = await reader.next();
    expect(second?.path).toBe(longName);
    await unpackBlob(archive, 'application/vnd.oci.image.layer.v1.tar');
    expect(fs.statSync(path.join(target, 'x')).uid).toBe(3_000_000);
    expect(fs.readFileSync(path.join(target, longName), 'utf8')).toBe('y');
    // A name no filesystem takes is the layer's fault, not the machine's.
    fs.rmSync(target, { recursive: true });
    fs.mkdirSync(target);
    await expect(unpackBlob(tar([{ type: 'file', path: 'x'.repeat(300), content: '' }]), 'application/vnd.oci.image.layer.v1.tar')).rejects.toThrow(
      InvalidArgumentError,
    );
  });

  it('reads gzip layers of several members and zstd layers of several frames', async () => {
    const a = tar([{ type: 'file', path: 'a', content: 'first' }]).subarray(0, 1024); // no end-of-archive blocks
    const b = tar([{ type: 'file', path: 'b', content: 'second' }]);
    const raw = Buffer.concat([a, b]);
    const gz = Buffer.concat([zlib.gzipSync(a), zlib.gzipSync(b)]);
    expect((await unpackBlob(gz, 'application/vnd.oci.image.layer.v1.tar+gzip')).diffId).toBe(sha256(raw));
    expect(fs.readFileSync(path.join(target, 'b'), 'utf8')).toBe('second');
    fs.rmSync(target, { recursive: true });
    fs.mkdirSync(target);
    const zst = Buffer.concat([compress(a, 'zstd'), compress(b, 'zstd')]);
    expect((await unpackBlob(zst, 'application/vnd.oci.image.layer.v1.tar+zstd')).diffId).toBe(sha256(raw));
    expect(fs.readFileSync(path.join(target, 'a'), 'utf8')).toBe('first');
  });

  it('never sets a time outside the layer through a directory that became a symlink', async () => {
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside);
    fs.utimesSync(outside, 1_000_000, 1_000_000);
    await unpack([
      { type: 'dir', path: 'd/', mtime: 1_700_000_000 },
      { type: 'symlink', path: 'd', target: outside },
    ]).result;
    expect(fs.statSync(outside).mtimeMs / 1000).toBe(1_000_000);
    expect(fs.readlinkSync(path.join(target, 'd'))).toBe(outside);
  });

  it('reports a truncated layer, a mislabelled one and a missing blob clearly', async () => {
    const raw = tar([{ type: 'file', path: 'f', content: 'x'.repeat(5000) }]);
    await expect(unpackBlob(raw.subarray(0, 2048), 'application/vnd.oci.image.layer.v1.tar')).rejects.toThrow(/ends inside the data of f/);
    await expect(unpackBlob(raw, 'application/vnd.oci.image.layer.v1.tar+zstd')).rejects.toThrow(/is not zstd-compressed/);
    await expect(unpackLayer(path.join(dir, 'absent'), 'application/vnd.oci.image.layer.v1.tar', target, { limits: LIMITS })).rejects.toThrow(
      /berth-unpack exit 1\): open .*absent: No such file/,
    );
  });
});
