// A small declarative schema for berth.toml: every key has a type, a default, a doc string and checks.
// One description serves validation, defaults, flag parsing and `berthd config` printing.
import path from 'node:path';

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`${key}: ${detail}`);
    this.name = 'ConfigError';
  }
}

export interface Leaf<T> {
  kind: 'leaf';
  doc: string;
  default: T;
  /** Checks a value read from TOML (already typed by the parser) and returns it. */
  check(value: unknown, key: string): T;
  /** Parses a command-line flag's text into a value, then checks it. */
  fromText(text: string, key: string): T;
}

export interface Table<F extends Fields> {
  kind: 'table';
  doc: string;
  fields: F;
}

export interface MapOf<V extends Fields> {
  kind: 'map';
  doc: string;
  entry: Table<V>;
  default: Record<string, Partial<Infer<Table<V>>>>;
  /** A name used to print a commented-out example entry when the map is empty. */
  example: string;
}

export type Node = Leaf<unknown> | Table<Fields> | MapOf<Fields>;
export type Fields = { [key: string]: Node };

export type Infer<N> =
  N extends Leaf<infer T>
    ? T
    : N extends Table<infer F>
      ? { [K in keyof F]: Infer<F[K]> }
      : N extends MapOf<infer V>
        ? Record<string, { [K in keyof V]: Infer<V[K]> }>
        : never;

const describe = (value: unknown): string => JSON.stringify(value) ?? String(value);

function leaf<T>(doc: string, def: T, check: Leaf<T>['check'], parse: (text: string) => unknown): Leaf<T> {
  return { kind: 'leaf', doc, default: def, check, fromText: (text, key) => check(parse(text), key) };
}

export interface StringOptions {
  oneOf?: readonly string[];
  absolutePath?: boolean;
  /** Empty string allowed (the default for optional settings). */
  allowEmpty?: boolean;
}

function checkString(value: unknown, key: string, opts: StringOptions): string {
  if (typeof value !== 'string') throw new ConfigError(key, `expected a string, got ${describe(value)}`);
  if (value === '' && opts.allowEmpty) return value;
  if (value === '') throw new ConfigError(key, 'must not be empty');
  if (opts.oneOf && !opts.oneOf.includes(value)) {
    throw new ConfigError(key, `expected one of ${opts.oneOf.map((v) => `"${v}"`).join(', ')}, got "${value}"`);
  }
  if (opts.absolutePath && !path.isAbsolute(value)) {
    throw new ConfigError(key, `expected an absolute path, got "${value}"`);
  }
  return value;
}

export function str(doc: string, def: string, opts: StringOptions = {}): Leaf<string> {
  return leaf(doc, def, (v, key) => checkString(v, key, opts), (t) => t);
}

export function int(doc: string, def: number, range: { min: number; max: number }): Leaf<number> {
  const check = (value: unknown, key: string): number => {
    const n = typeof value === 'bigint' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      throw new ConfigError(key, `expected an integer, got ${describe(value)}`);
    }
    if (n < range.min || n > range.max) {
      throw new ConfigError(key, `expected an integer from ${range.min} to ${range.max}, got ${n}`);
    }
    return n;
  };
  return leaf(doc, def, check, (t) => (/^-?\d+$/.test(t.trim()) ? Number(t) : t));
}

export function bool(doc: string, def: boolean): Leaf<boolean> {
  const check = (value: unknown, key: string): boolean => {
    if (typeof value !== 'boolean') throw new ConfigError(key, `expected true or false, got ${describe(value)}`);
    return value;
  };
  const parse = (t: string): unknown => (t === 'true' ? true : t === 'false' ? false : t);
  return leaf(doc, def, check, parse);
}

export function strList(doc: string, def: string[], opts: StringOptions = {}): Leaf<string[]> {
  const check = (value: unknown, key: string): string[] => {
    if (!Array.isArray(value)) throw new ConfigError(key, `expected an array of strings, got ${describe(value)}`);
    return value.map((item, i) => checkString(item, `${key}[${i}]`, opts));
  };
  return leaf(doc, def, check, (t) => (t === '' ? [] : t.split(',')));
}

export function table<F extends Fields>(doc: string, fields: F): Table<F> {
  return { kind: 'table', doc, fields };
}

export function mapOf<V extends Fields>(
  doc: string,
  entry: Table<V>,
  def: Record<string, Partial<Infer<Table<V>>>>,
  example: string,
): MapOf<V> {
  return { kind: 'map', doc, entry, default: def, example };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

const join = (prefix: string, key: string): string => (prefix ? `${prefix}.${key}` : key);

/** Validates raw (parsed TOML) against a table, filling defaults; unknown keys are errors. */
export function resolveTable<F extends Fields>(schema: Table<F>, raw: unknown, prefix = ''): Infer<Table<F>> {
  if (raw === undefined) raw = {};
  if (!isPlainObject(raw)) throw new ConfigError(prefix || '(top level)', `expected a table, got ${describe(raw)}`);
  for (const key of Object.keys(raw)) {
    if (!(key in schema.fields)) throw new ConfigError(join(prefix, key), 'unknown key');
  }
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(schema.fields)) {
    out[key] = resolveNode(node, raw[key], join(prefix, key));
  }
  return out as Infer<Table<F>>;
}

function resolveNode(node: Node, raw: unknown, key: string): unknown {
  switch (node.kind) {
    case 'leaf':
      return raw === undefined ? structuredClone(node.default) : node.check(raw, key);
    case 'table':
      return resolveTable(node, raw, key);
    case 'map': {
      if (raw !== undefined && !isPlainObject(raw)) throw new ConfigError(key, `expected a table of tables, got ${describe(raw)}`);
      // Entries given in the file add to the defaults, or replace the default of the same name.
      const entries: Record<string, unknown> = { ...node.default, ...(raw ?? {}) };
      const out: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(entries)) out[name] = resolveTable(node.entry, value, join(key, name));
      return out;
    }
  }
}

/** Finds the leaf at a dotted path (only through tables), for flags. */
export function leafAt(schema: Table<Fields>, dotted: string): Leaf<unknown> {
  let node: Node = schema;
  for (const part of dotted.split('.')) {
    if (node.kind !== 'table' || !(part in node.fields)) throw new Error(`no config key ${dotted}`);
    node = node.fields[part];
  }
  if (node.kind !== 'leaf') throw new Error(`config key ${dotted} is not a value`);
  return node;
}

/** Sets a value at a dotted path in a raw (parsed TOML) object, creating tables on the way. */
export function setRaw(raw: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let cur = raw;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (!isPlainObject(next)) cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
}
