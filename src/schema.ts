// A small declarative schema for the settings file. One description per field gives the TypeScript type, the
// validation, the default, the HEPH_* environment name and the commented example file, so the four never drift.

export type Issue = { path: string; message: string };

export class SchemaError extends Error {
  constructor(readonly issue: Issue) {
    super(`${issue.path}: ${issue.message}`);
  }
}

type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

export interface Field<T> {
  readonly kind: 'field';
  readonly doc: string;
  readonly default: T;
  /** How the default is written in the example file when it is not a plain value (e.g. "auto"). */
  readonly exampleValue?: string;
  /** A short description of what is accepted, used in error messages. */
  readonly expects: string;
  parse(raw: unknown): ParseResult<T>;
  /** Environment variables are strings; each field knows how to read one. */
  fromEnv(raw: string): unknown;
}

export interface Section<S extends Shape> {
  readonly kind: 'section';
  readonly doc: string;
  readonly shape: S;
}

export type Shape = { readonly [key: string]: Field<unknown> | Section<Shape> };

export type Infer<S extends Shape> = {
  -readonly [K in keyof S]: S[K] extends Field<infer T> ? T : S[K] extends Section<infer Inner> ? Infer<Inner> : never;
};

function field<T>(spec: Omit<Field<T>, 'kind' | 'fromEnv'> & { fromEnv?: (raw: string) => unknown }): Field<T> {
  return { kind: 'field', fromEnv: (raw) => raw, ...spec };
}

export function section<S extends Shape>(doc: string, shape: S): Section<S> {
  return { kind: 'section', doc, shape };
}

export function str(doc: string, def: string, opts: { pattern?: RegExp; expects?: string; exampleValue?: string } = {}): Field<string> {
  const expects = opts.expects ?? 'a string';
  return field<string>({
    doc,
    default: def,
    expects,
    ...(opts.exampleValue === undefined ? {} : { exampleValue: opts.exampleValue }),
    parse(raw) {
      if (typeof raw !== 'string') return { ok: false, message: `expected ${expects}, got ${describe(raw)}` };
      if (opts.pattern && !opts.pattern.test(raw)) return { ok: false, message: `expected ${expects}, got ${JSON.stringify(raw)}` };
      return { ok: true, value: raw };
    },
  });
}

export function int(doc: string, def: number, min: number, max: number): Field<number> {
  const expects = `a whole number from ${min} to ${max}`;
  return field<number>({
    doc,
    default: def,
    expects,
    parse(raw) {
      if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) {
        return { ok: false, message: `expected ${expects}, got ${describe(raw)}` };
      }
      return { ok: true, value: raw };
    },
    fromEnv: (raw) => (/^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw),
  });
}

export function port(doc: string, def: number): Field<number> {
  // Port 0 asks the kernel for a free port: tests and side-by-side runs rely on it.
  return int(doc, def, 0, 65535);
}

export function bool(doc: string, def: boolean): Field<boolean> {
  return field<boolean>({
    doc,
    default: def,
    expects: 'true or false',
    parse(raw) {
      if (typeof raw !== 'boolean') return { ok: false, message: `expected true or false, got ${describe(raw)}` };
      return { ok: true, value: raw };
    },
    fromEnv: (raw) => {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      return raw;
    },
  });
}

export function oneOf<const T extends string>(doc: string, def: T, values: readonly T[]): Field<T> {
  const expects = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  return field<T>({
    doc,
    default: def,
    expects,
    parse(raw) {
      if (typeof raw !== 'string' || !(values as readonly string[]).includes(raw)) {
        return { ok: false, message: `expected ${expects}, got ${describe(raw)}` };
      }
      return { ok: true, value: raw as T };
    },
  });
}

export function list(doc: string, def: string[], item: { pattern?: RegExp; expects?: string } = {}): Field<string[]> {
  const expects = `a list of ${item.expects ?? 'strings'}`;
  return field<string[]>({
    doc,
    default: def,
    expects,
    parse(raw) {
      if (!Array.isArray(raw)) return { ok: false, message: `expected ${expects}, got ${describe(raw)}` };
      for (const [i, v] of raw.entries()) {
        if (typeof v !== 'string' || (item.pattern && !item.pattern.test(v))) {
          return { ok: false, message: `item ${i}: expected ${item.expects ?? 'a string'}, got ${describe(v)}` };
        }
      }
      return { ok: true, value: raw as string[] };
    },
    fromEnv: (raw) => raw.split(',').map((s) => s.trim()).filter((s) => s !== ''),
  });
}

/** A free-form map (e.g. option 43 sub-options per arch); the owning module validates the inside. */
export function map<T>(doc: string, def: Record<string, T>, check: (key: string, value: unknown) => string | undefined, expects: string): Field<Record<string, T>> {
  return field<Record<string, T>>({
    doc,
    default: def,
    expects,
    parse(raw) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, message: `expected ${expects}, got ${describe(raw)}` };
      for (const [k, v] of Object.entries(raw)) {
        const problem = check(k, v);
        if (problem !== undefined) return { ok: false, message: `${k}: ${problem}` };
      }
      return { ok: true, value: raw as Record<string, T> };
    },
    fromEnv: (raw) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        return raw;
      }
    },
  });
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return `${typeof v} ${String(v)}`;
}

export function defaults<S extends Shape>(shape: S): Infer<S> {
  const out: Record<string, unknown> = {};
  for (const [k, node] of Object.entries(shape)) {
    out[k] = node.kind === 'field' ? structuredClone(node.default) : defaults(node.shape);
  }
  return out as Infer<S>;
}

/** Closest known key, so that a typo gets "did you mean". */
export function suggest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestScore) {
      bestScore = d;
      best = k;
    }
  }
  return bestScore <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = prev[j]!;
      prev[j] = Math.min(above + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = above;
    }
  }
  return prev[b.length]!;
}

/**
 * Validates a plain object against the shape, merging over the defaults. `locate` turns a dotted path into a
 * human position ("line 12") for messages; unknown keys are errors because a misspelt setting that silently
 * does nothing is the 3 am failure this file exists to prevent.
 */
export function validate<S extends Shape>(shape: S, input: unknown, prefix = ''): Infer<S> {
  const out = defaults(shape) as Record<string, unknown>;
  if (input === undefined || input === null) return out as Infer<S>;
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new SchemaError({ path: prefix || '(top level)', message: `expected a mapping of settings, got ${describe(input)}` });
  }
  for (const [key, value] of Object.entries(input)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const node = shape[key];
    if (node === undefined) {
      const hint = suggest(key, Object.keys(shape));
      throw new SchemaError({
        path,
        message: `unknown setting${hint ? ` (did you mean "${prefix ? `${prefix}.` : ''}${hint}"?)` : ''}; known here: ${Object.keys(shape).join(', ')}`,
      });
    }
    if (node.kind === 'section') {
      out[key] = validate(node.shape, value, path);
    } else {
      const r = node.parse(value);
      if (!r.ok) throw new SchemaError({ path, message: r.message });
      out[key] = r.value;
    }
  }
  return out as Infer<S>;
}

/** Every field with its dotted path, in declaration order. */
export function* walk(shape: Shape, prefix = ''): Generator<{ path: string; field: Field<unknown> }> {
  for (const [k, node] of Object.entries(shape)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (node.kind === 'field') yield { path, field: node };
    else yield* walk(node.shape, path);
  }
}

/** `network.advertiseAddress` → `HEPH_NETWORK_ADVERTISE_ADDRESS`. */
export function envName(path: string): string {
  return `HEPH_${path
    .split('.')
    .map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
    .join('_')}`;
}

export const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An IPv4 address; with `optional`, empty means "work it out" (documented by the field). */
export function ipv4(doc: string, def: string, optional = false): Field<string> {
  return str(doc, def, {
    pattern: optional ? new RegExp(`^$|${IPV4.source}`) : IPV4,
    expects: optional ? 'an IPv4 address such as 192.0.2.10, or empty' : 'an IPv4 address such as 0.0.0.0',
  });
}
