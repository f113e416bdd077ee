// `berthd version`: berth's version, the commit its dist/ was built from (hack/build-info.sh), the Node it
// runs on, and what each native helper says it is (a helper left from another build shows here).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { helperBinary } from './helpers';
import { packageJson, packageRoot } from './package-root';

const HELPERS = ['runtime', 'monitor', 'init', 'pinns', 'unpack'] as const;

function buildCommit(): string {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'dist', 'build-info.json'), 'utf8')) as { commit?: string; dirty?: boolean };
    return `${info.commit ?? 'unknown'}${info.dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown (no dist/build-info.json)';
  }
}

/** The first line a helper's --version prints, without its own name: "0.1.0", or why there is none. */
function helperVersion(name: (typeof HELPERS)[number]): string {
  const file = helperBinary(name);
  try {
    const out = execFileSync(file, ['--version'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
    return out.split('\n')[0].replace(/^berth-\w+ (version )?/, '');
  } catch (err) {
    return `unknown (${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]})`;
  }
}

export function versionReport(): string {
  const lines = [`berth ${packageJson().version}`, `commit: ${buildCommit()}`, `node: ${process.version}`];
  for (const name of HELPERS) lines.push(`berth-${name}: ${helperVersion(name)}`);
  return `${lines.join('\n')}\n`;
}
