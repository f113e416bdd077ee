// The workloads: every module in ./workloads whose default export is a Workload. Adding a workload is adding a
// file there.
import fs from 'node:fs';
import path from 'node:path';
import type { Workload } from './workload';

/** Reported first, in this order; any other workload follows by name. */
const FIRST = ['version', 'status', 'list', 'imagefs'];

export function isWorkload(x: unknown): x is Workload {
  if (typeof x !== 'object' || x === null) return false;
  const w = x as Record<string, unknown>;
  return (
    typeof w.name === 'string' &&
    /^[a-z][a-z0-9-]*$/.test(w.name) &&
    typeof w.description === 'string' &&
    Array.isArray(w.rpcs) &&
    w.rpcs.length > 0 &&
    w.rpcs.every((r) => typeof r === 'string') &&
    typeof w.run === 'function' &&
    (w.setup === undefined || typeof w.setup === 'function') &&
    (w.teardown === undefined || typeof w.teardown === 'function')
  );
}

export function orderWorkloads(workloads: readonly Workload[]): Workload[] {
  const rank = (w: Workload) => {
    const i = FIRST.indexOf(w.name);
    return i < 0 ? FIRST.length : i;
  };
  return [...workloads].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** Loads the compiled workload modules (`*.js`) of `dir`. Throws on a module that exports no valid workload. */
export function loadWorkloads(dir = path.join(__dirname, 'workloads')): Workload[] {
  const found: Workload[] = [];
  for (const file of fs.readdirSync(dir).sort()) {
    if (!file.endsWith('.js')) continue;
    const mod: unknown = require(path.join(dir, file));
    const w = (mod as { default?: unknown }).default;
    if (!isWorkload(w)) throw new Error(`${path.join(dir, file)}: its default export is not a workload`);
    if (found.some((f) => f.name === w.name)) throw new Error(`two workloads are named ${JSON.stringify(w.name)}`);
    found.push(w);
  }
  return orderWorkloads(found);
}

/** The workloads named, in the order named; when none is, all whose required environment is set. */
export function selectWorkloads(all: readonly Workload[], names: readonly string[]): Workload[] {
  if (!names.length) return all.filter((w) => (w.requires ?? []).every((v) => process.env[v]));
  return names.map((name) => {
    const w = all.find((x) => x.name === name);
    if (!w) throw new Error(`no workload named ${JSON.stringify(name)}; there are: ${all.map((x) => x.name).join(', ')}`);
    const missing = (w.requires ?? []).filter((v) => !process.env[v]);
    if (missing.length) throw new Error(`workload ${name} needs ${missing.join(', ')} set (see docs/benchmarks.md)`);
    return w;
  });
}
