import fs from 'node:fs';
import path from 'node:path';

let root: string | undefined;

/** The directory holding berth's package.json, whether running from src/ (tests) or dist/src/ (built). */
export function packageRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'proto'))) {
      root = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`berth package root not found above ${__dirname}`);
    dir = parent;
  }
}

interface PackageJson {
  name: string;
  version: string;
}

export function packageJson(): PackageJson {
  return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as PackageJson;
}
