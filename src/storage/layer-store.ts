// Unpacked layers under <root>/layers/<chainID hex>/: `diff/` is the layer's tree, ready to be an
// overlayfs lower dir; `layer.json` describes it. A layer is built in a temp dir and renamed into
// place whole, so a directory under its final name is always complete.
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileSynced } from '../native';
import { Singleflight } from '../util/mutex';

export interface LayerInfo {
  chainId: string;
  diffId: string;
  /** Uncompressed size of the layer's tar stream. */
  size: number;
  entries: number;
}

/**
 * A temp dir with an empty diff/ (stage), for a layer unpacked before its chain ID is known. ensure takes
 * it as the layer's temp dir (taken), or else the caller discards it.
 */
export interface StagedLayer {
  readonly dir: string;
  taken: boolean;
}

const TEMP_PREFIX = 'tmp-';
const hexOf = (digest: string): string => {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1];
};

export class LayerStore {
  private readonly building = new Singleflight<LayerInfo>();

  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Temp dirs are layers a crash interrupted: never trusted, always removed.
    for (const name of await fs.readdir(this.dir)) {
      if (name.startsWith(TEMP_PREFIX)) await fs.rm(path.join(this.dir, name), { recursive: true, force: true });
    }
  }

  layerDir(chainId: string): string {
    return path.join(this.dir, hexOf(chainId));
  }

  /** The directory to use as an overlayfs lower dir. */
  diffDir(chainId: string): string {
    return path.join(this.layerDir(chainId), 'diff');
  }

  async get(chainId: string): Promise<LayerInfo | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.layerDir(chainId), 'layer.json'), 'utf8')) as LayerInfo;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Returns the layer, building it once with `fill` if it is missing. `fill` writes the tree into the
   * directory it is given and returns the layer's facts; concurrent requests for one layer are joined.
   * With `staged`, the tree is there already: that dir becomes the layer (fill only checks it and gives
   * the facts), unless the layer was stored meanwhile.
   */
  ensure(chainId: string, fill: (diffDir: string) => Promise<Omit<LayerInfo, 'chainId'>>, staged?: StagedLayer): Promise<LayerInfo> {
    return this.building.do(chainId, async () => {
      const existing = await this.get(chainId);
      if (existing) return existing;
      const temp = staged?.dir ?? (await this.makeTempDir());
      if (staged) staged.taken = true;
      try {
        const info: LayerInfo = { chainId, ...(await fill(path.join(temp, 'diff'))) };
        // No temp file and rename for layer.json: the whole dir is the temp, renamed into place below.
        // The sync stays: a layer.json named but empty after a crash would fail every later lookup.
        await writeFileSynced(path.join(temp, 'layer.json'), JSON.stringify(info, null, 2) + '\n', 0o600);
        await fs.rename(temp, this.layerDir(chainId));
        return info;
      } catch (err) {
        await fs.rm(temp, { recursive: true, force: true });
        throw err;
      }
    });
  }

  /** A staged layer dir. Like every temp dir, it is removed at start-up if a crash leaves it. */
  async stage(): Promise<StagedLayer> {
    return { dir: await this.makeTempDir(), taken: false };
  }

  /** A new temp dir with an empty diff/ (the layers dir exists: init made it). */
  private async makeTempDir(): Promise<string> {
    const temp = path.join(this.dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    await fs.mkdir(temp, { mode: 0o755 });
    try {
      await fs.mkdir(path.join(temp, 'diff'), { mode: 0o755 });
    } catch (err) {
      await fs.rm(temp, { recursive: true, force: true });
      throw err;
    }
    return temp;
  }

  /** Removes a staged dir that ensure did not take. */
  async discard(staged: StagedLayer): Promise<void> {
    if (!staged.taken) await fs.rm(staged.dir, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    const names = await fs.readdir(this.dir);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  async remove(chainId: string): Promise<void> {
    // Rename first so that a crash half-way through the delete leaves a temp dir, not a broken layer.
    const doomed = path.join(this.dir, `${TEMP_PREFIX}rm-${randomBytes(8).toString('hex')}`);
    try {
      await fs.rename(this.layerDir(chainId), doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await fs.rm(doomed, { recursive: true, force: true });
  }
}
