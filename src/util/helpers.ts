// Where berth's native helpers (berth-runtime, berth-monitor, berth-init, berth-pinns, berth-unpack) are:
// native/bin of the package, or BERTH_HELPERS_DIR when set (a package that installs them elsewhere, or
// the tests that run builds of them under AddressSanitizer).
import path from 'node:path';
import { packageRoot } from './package-root';

export function helpersDir(): string {
  return process.env.BERTH_HELPERS_DIR || path.join(packageRoot(), 'native', 'bin');
}

/** The path of helper `berth-<name>`. */
export function helperBinary(name: 'runtime' | 'monitor' | 'init' | 'pinns' | 'unpack'): string {
  return path.join(helpersDir(), `berth-${name}`);
}
