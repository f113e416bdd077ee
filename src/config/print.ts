// Renders a config as commented TOML (as `crio config` does): every key, its doc, its effective value.
import { stringify } from 'smol-toml';
import type { Fields, Node, Table } from './schema-kit';

const comment = (doc: string): string[] => doc.split('\n').map((line) => `# ${line}`);

function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

function valueLine(key: string, value: unknown): string {
  return stringify({ [key]: value }).trim();
}

function printTable(schema: Table<Fields>, values: Record<string, unknown>, header: string[], out: string[]): void {
  const nested: Array<[string, Node]> = [];
  if (header.length) {
    out.push('', ...comment(schema.doc), `[${header.map(tomlKey).join('.')}]`);
  }
  for (const [key, node] of Object.entries(schema.fields)) {
    if (node.kind !== 'leaf') {
      nested.push([key, node]);
      continue;
    }
    out.push(...comment(node.doc), valueLine(key, values[key]));
  }
  for (const [key, node] of nested) {
    const value = values[key] as Record<string, unknown>;
    if (node.kind === 'table') {
      printTable(node, value, [...header, key], out);
    } else if (node.kind === 'map') {
      out.push('', ...comment(node.doc));
      if (Object.keys(value).length === 0) {
        const example: string[] = [];
        const defaults = Object.fromEntries(
          Object.entries(node.entry.fields).map(([k, f]) => [k, f.kind === 'leaf' ? f.default : undefined]),
        );
        printTable(node.entry, defaults, [...header, key, node.example], example);
        out.push(...example.filter((line) => line !== '').map((line) => (line.startsWith('#') ? line : `# ${line}`)));
      }
      for (const [name, entry] of Object.entries(value)) {
        printTable(node.entry, entry as Record<string, unknown>, [...header, key, name], out);
      }
    }
  }
}

export function printConfig(schema: Table<Fields>, config: object): string {
  const out = ['# berth configuration (berth.toml). Every key is shown with its effective value.'];
  printTable(schema, config as Record<string, unknown>, [], out);
  return out.join('\n') + '\n';
}
