// Layer compression, deterministic: gzip through Node's zlib (its header carries no mtime and the
// Unix OS byte), zstd through Debian's `zstd` command (Node 20's zlib has no zstd; the `zstd` package
// is installed by hack/install.sh), or none. Decompression for checks: zlib, fzstd.
import { execFileSync } from 'node:child_process';
import zlib from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';

export type Compression = 'gzip' | 'zstd' | 'none';

export function compress(data: Buffer, compression: Compression): Buffer {
  if (compression === 'gzip') return zlib.gzipSync(data, { level: 6 });
  if (compression === 'zstd') {
    try {
      return execFileSync('zstd', ['-q', '-c', '-3', '--no-progress'], { input: data, maxBuffer: 1 << 30 });
    } catch (err) {
      throw new Error(`zstd failed (install Debian's zstd package): ${(err as Error).message}`);
    }
  }
  return data;
}

export function decompress(data: Buffer, compression: Compression): Buffer {
  if (compression === 'gzip') return zlib.gunzipSync(data);
  if (compression === 'zstd') return Buffer.from(zstdDecompress(data));
  return data;
}

/** The compression of a blob, from its magic bytes. */
export function detectCompression(data: Buffer): Compression {
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) return 'gzip';
  if (data.length >= 4 && data.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** The compression a layer media type names. */
export function compressionOf(mediaType: string): Compression {
  if (mediaType.endsWith('gzip')) return 'gzip';
  if (mediaType.endsWith('zstd')) return 'zstd';
  return 'none';
}
