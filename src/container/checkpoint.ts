// CheckpointContainer. berth would checkpoint with CRIU (Debian's criu) where CRIU can run; it has no
// checkpoint of its own yet. What CRIU can do on this host is asked of `criu check` once (the probe is
// CRIU's own: kernel features, vDSO layout), and every refusal carries its answer, so an operator sees
// why, measured on the node, not guessed.
import os from 'node:os';
import { runCommand } from '../util/spawn';

export interface CriuProbe {
  usable: boolean;
  /** "criu 3.17.1", or why it cannot run here (its own first error line). */
  detail: string;
}

/** Where Debian's package puts it (berth's helpers are spawned by absolute path). */
const CRIU_BINARY = '/usr/sbin/criu';

let probe: Promise<CriuProbe> | undefined;

async function runProbe(): Promise<CriuProbe> {
  const version = await runCommand([CRIU_BINARY, '--version'], { timeoutMs: 10_000 }).catch(() => undefined);
  if (!version || version.code !== 0) return { usable: false, detail: 'criu is not installed (the Debian package criu)' };
  const name = `criu ${/Version:\s*(\S+)/.exec(version.stdout)?.[1] ?? '(unknown version)'}`;
  const check = await runCommand([CRIU_BINARY, 'check'], { timeoutMs: 30_000 });
  if (check.code === 0) return { usable: true, detail: name };
  const output = `${check.stderr}\n${check.stdout}`;
  const firstError = output.split('\n').find((l) => /Error/.test(l))?.replace(/^Error \([^)]*\):\s*/, '') ?? (output.trim() || `exit ${check.code}`);
  return { usable: false, detail: `${name} cannot run on this kernel (${os.release()}): \`criu check\` says "${firstError.trim()}"` };
}

/** `criu check`'s verdict, asked once per berthd. */
export function probeCriu(): Promise<CriuProbe> {
  probe ??= runProbe();
  return probe;
}
