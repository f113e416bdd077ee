import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { CRI_PROTO_PATH } from '../../src/proto/load';
import { packageRoot } from '../../src/util/package-root';

const REFERENCE = path.join(packageRoot(), '..', 'shared', 'reference', 'cri-api', 'api.proto');

/** The wire facts of a proto file: every name, number, type and option, without comments or layout. */
function wireFacts(file: string): string {
  const root = new protobuf.Root();
  root.loadSync(file, { keepCase: true });
  const json = (root.lookup('runtime.v1') as protobuf.Namespace | null)?.toJSON({ keepComments: false });
  return JSON.stringify(json, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : value,
  );
}

function services(file: string): Record<string, string[]> {
  const root = new protobuf.Root();
  root.loadSync(file, { keepCase: true });
  const out: Record<string, string[]> = {};
  for (const name of ['RuntimeService', 'ImageService']) {
    out[name] = Object.keys(root.lookupService(`runtime.v1.${name}`).methods);
  }
  return out;
}

describe('CRI proto', () => {
  it('has every RPC of RuntimeService (35) and ImageService (6)', () => {
    const s = services(CRI_PROTO_PATH);
    expect(s.RuntimeService).toHaveLength(35);
    expect(s.ImageService).toHaveLength(6);
    expect(s.RuntimeService).toContain('RuntimeConfig');
    expect(s.ImageService).toContain('PullImage');
  });

  it('is our own text', () => {
    const ours = fs.readFileSync(CRI_PROTO_PATH, 'utf8');
    expect(ours).toMatch(/^\/\/ berth's copy of the Kubernetes Container Runtime Interface/);
    expect(ours).not.toMatch(/Copyright/);
  });

  it.runIf(fs.existsSync(REFERENCE))('is wire-identical to the Kubernetes v1.36 reference', () => {
    expect(wireFacts(CRI_PROTO_PATH)).toBe(wireFacts(REFERENCE));
  });
});
