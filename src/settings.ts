import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, stringify, type Node } from 'yaml';
import { apiSettings } from './api/settings.ts';
import { bootSettings, profilesSettings } from './boot/settings.ts';
import { dhcpSettings } from './dhcp/settings.ts';
import { ipxeSettings } from './ipxe/settings.ts';
import { grpcSettings, kmsgSettings } from './events/settings.ts';
import { envName, int, ipv4, list, oneOf, port, section, str, suggest, validate, walk, SchemaError, type Infer, type Shape } from './schema.ts';
import { tftpSettings } from './tftp/settings.ts';
import { signingSettings, tlsSettings } from './pki/settings.ts';
import { secretsSettings } from './secrets/settings.ts';

export const DEFAULT_SETTINGS_FILE = 'heph.yaml';

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

// Each later capability adds its own section here, defined next to the code that reads it.
export const settingsSchema = {
  dataDir: str('Where heph keeps its SQLite inventory, assets and keys. Created 0700 if missing.', './heph-data'),
  log: section('Logging.', {
    level: oneOf('Least severe level written.', 'info', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const),
    format: oneOf('json: one JSON object per line (for log shippers); pretty: coloured lines for a person at a terminal.', 'json', ['json', 'pretty'] as const),
  }),
  network: section('Which network heph serves and how machines reach it.', {
    interfaces: list('Interfaces proxy-DHCP answers on (e.g. [eth1]). Requests that arrive on any other interface get no answer.', [], {
      pattern: IFNAME,
      expects: 'interface names such as eth1',
    }),
    advertiseAddress: ipv4('IPv4 address machines use to reach heph (DHCP siaddr, TFTP, HTTP URLs). Empty: the first IPv4 address of the first served interface.', '', true),
  }),
  http: section('The machine-facing HTTP server (iPXE scripts, assets, configs) and /healthz, /metrics.', {
    listen: ipv4('Address to listen on.', '0.0.0.0'),
    port: port('TCP port.', 8080),
  }),
  dhcp: dhcpSettings,
  tftp: tftpSettings,
  ipxe: ipxeSettings,
  boot: bootSettings,
  profiles: profilesSettings,
  grpc: grpcSettings,
  api: apiSettings,
  kmsg: kmsgSettings,
  tls: tlsSettings,
  signing: signingSettings,
  secrets: secretsSettings,
  threads: section("heph's own threads.", {
    packetPriority: int(
      'Nice levels the DHCP and TFTP packet threads run above the rest of heph. Firmware speaks those protocols in lock-step, one round trip per window of blocks, with timeouts and no flow control, so in a boot storm every wait behind HTTP, the inventory or a bulk download is added to each round trip; TCP traffic is not hurt by waiting its turn. Needs root or CAP_SYS_NICE, or a warning says the threads run at heph\'s priority. 0: same priority as the rest.',
      10,
      0,
      20,
    ),
  }),
  shutdown: section('Stopping.', {
    graceMs: int('How long services get to finish in-flight work on SIGTERM/SIGINT before heph exits anyway.', 4000, 100, 60000),
  }),
} satisfies Shape;

export type Settings = Infer<typeof settingsSchema>;

export type Source = { kind: 'file'; file: string; line?: number } | { kind: 'env'; name: string } | { kind: 'flag'; flag: string } | { kind: 'defaults' };

/** A settings problem, phrased for the person who has to fix it. */
export class SettingsError extends Error {
  constructor(
    readonly source: Source,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${where(source)}: ${path ? `${path}: ` : ''}${reason}`);
  }
}

function where(s: Source): string {
  switch (s.kind) {
    case 'file':
      return s.line === undefined ? `settings file ${s.file}` : `settings file ${s.file}, line ${s.line}`;
    case 'env':
      return `environment variable ${s.name}`;
    case 'flag':
      return `command-line flag ${s.flag}`;
    case 'defaults':
      return 'settings';
  }
}

export interface LoadOptions {
  /** Path given with --config; when absent ./heph.yaml is read if it exists. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** `path=value` pairs from --set flags, values read as YAML scalars. */
  overrides?: string[];
  cwd?: string;
}

/** The flags every command that reads the settings takes (`--config FILE`, `--set path=value`). */
export const SETTINGS_FLAGS = { config: { type: 'string', short: 'c' }, set: { type: 'string', multiple: true } } as const;

/** Settings as `heph serve` would load them, from the values of SETTINGS_FLAGS. */
export function settingsFromFlags(values: { config?: unknown; set?: unknown }): LoadedSettings {
  return loadSettings({ file: typeof values.config === 'string' ? values.config : undefined, overrides: Array.isArray(values.set) ? values.set.map(String) : [] });
}

export interface LoadedSettings {
  settings: Settings;
  /** The file actually read, if any. */
  file: string | undefined;
}

export function loadSettings(opts: LoadOptions = {}): LoadedSettings {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const explicit = opts.file ?? env.HEPH_CONFIG;
  const file = explicit !== undefined ? resolve(cwd, explicit) : resolve(cwd, DEFAULT_SETTINGS_FILE);
  let raw: Record<string, unknown> = {};
  let read: string | undefined;
  if (existsSync(file)) {
    raw = readSettingsFile(file);
    read = file;
  } else if (explicit !== undefined) {
    throw new SettingsError({ kind: 'file', file }, '', 'no such file. Write one with `heph settings example > heph.yaml`, or leave out --config to use the defaults.');
  }
  const fields = new Map([...walk(settingsSchema)].map((f) => [f.path, f.field]));
  for (const [path, f] of fields) {
    const name = envName(path);
    const value = env[name];
    if (value !== undefined) setOverride(raw, path, f.fromEnv(value), { kind: 'env', name });
  }
  for (const name of Object.keys(env)) {
    if (!name.startsWith('HEPH_') || name === 'HEPH_CONFIG') continue;
    const known = [...fields.keys()].map(envName);
    if (!known.includes(name)) {
      const hint = suggest(name, known);
      throw new SettingsError({ kind: 'env', name }, '', `not a heph setting${hint ? ` (did you mean ${hint}?)` : ''}. Every HEPH_ variable must name one; see \`heph settings example\`.`);
    }
  }
  for (const pair of opts.overrides ?? []) {
    const flag = `--set ${pair}`;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new SettingsError({ kind: 'flag', flag }, '', 'expected --set path=value, for example --set http.port=9080');
    const path = pair.slice(0, eq);
    if (!fields.has(path)) {
      const hint = suggest(path, [...fields.keys()]);
      throw new SettingsError({ kind: 'flag', flag }, path, `unknown setting${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    setOverride(raw, path, parseDocument(pair.slice(eq + 1)).toJS() ?? '', { kind: 'flag', flag });
  }
  const settings = validateWithSources(raw, read);
  check(settings, read);
  return { settings, file: read };
}

// Remember where each override came from so that a bad value is blamed on the variable, not on the file.
const overrideSources = new WeakMap<object, Map<string, Source>>();

function setOverride(raw: Record<string, unknown>, path: string, value: unknown, source: Source): void {
  const parts = path.split('.');
  let obj: Record<string, unknown> = raw;
  for (const p of parts.slice(0, -1)) {
    const next = obj[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) obj[p] = {};
    obj = obj[p] as Record<string, unknown>;
  }
  obj[parts.at(-1)!] = value;
  const sources = overrideSources.get(raw) ?? new Map<string, Source>();
  sources.set(path, source);
  overrideSources.set(raw, sources);
}

const positions = new WeakMap<object, { file: string; lines: Map<string, number> }>();

function readSettingsFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SettingsError({ kind: 'file', file }, '', `cannot be read: ${(err as Error).message}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const line = lineCounter.linePos(first.pos[0]).line;
    throw new SettingsError({ kind: 'file', file, line }, '', `not valid YAML: ${first.message.split('\n')[0]}`);
  }
  const lines = new Map<string, number>();
  const record = (node: Node | null, prefix: string): void => {
    if (!isMap(node)) return;
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const path = prefix ? `${prefix}.${key}` : key;
      const at = (pair.key as Node | null)?.range?.[0];
      if (at !== undefined) lines.set(path, lineCounter.linePos(at).line);
      record(pair.value as Node | null, path);
    }
  };
  record(doc.contents, '');
  const js = doc.toJS() as unknown;
  if (js === null || js === undefined) return {};
  if (typeof js !== 'object' || Array.isArray(js)) {
    throw new SettingsError({ kind: 'file', file, line: 1 }, '', 'expected a mapping of settings (key: value lines) at the top level');
  }
  positions.set(js, { file, lines });
  return js as Record<string, unknown>;
}

function validateWithSources(raw: Record<string, unknown>, file: string | undefined): Settings {
  try {
    return validate(settingsSchema, raw);
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    const { path, message } = err.issue;
    const override = overrideSources.get(raw)?.get(path);
    if (override) throw new SettingsError(override, path, message);
    throw new SettingsError(sourceOf(raw, path, file), path, message);
  }
}

function sourceOf(raw: object, path: string, file: string | undefined): Source {
  const pos = positions.get(raw);
  if (!file || !pos) return { kind: 'defaults' };
  // The deepest recorded prefix: an item inside a list is reported at its list's line.
  const parts = path.split('.');
  for (let n = parts.length; n > 0; n--) {
    const line = pos.lines.get(parts.slice(0, n).join('.'));
    if (line !== undefined) return { kind: 'file', file, line };
  }
  return { kind: 'file', file };
}

/** Rules that span fields. */
function check(s: Settings, file: string | undefined): void {
  const fail = (path: string, reason: string): never => {
    throw new SettingsError(file ? { kind: 'file', file } : { kind: 'defaults' }, path, reason);
  };
  if (s.dhcp.enabled && s.network.interfaces.length === 0) {
    fail('dhcp.enabled', 'proxy-DHCP needs network.interfaces: name the interface(s) facing the machines, e.g. `network: {interfaces: [eth1]}`, so heph never answers DHCP on a network it was not meant for.');
  }
  if (s.dhcp.enabled && s.dhcp.port !== 0 && s.dhcp.port === s.dhcp.proxyPort) {
    fail('dhcp.proxyPort', `must differ from dhcp.port (both are ${s.dhcp.port})`);
  }
  if (s.tls.enabled && s.tls.port !== 0 && s.tls.port === s.http.port) {
    fail('tls.port', `must differ from http.port (both are ${s.http.port})`);
  }
}

/** The complete settings file with every default and an explanation for each, from the schema itself. */
export function exampleSettings(): string {
  const out: string[] = [
    '# heph settings. Every value below is the default; delete what you do not change.',
    '# Each setting can also be set with an environment variable (shown) or `heph serve --set path=value`.',
    '',
  ];
  const emit = (shape: Shape, indent: string, prefix: string): void => {
    for (const [key, node] of Object.entries(shape)) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (node.kind === 'section') {
        if (!prefix) out.push('');
        out.push(`${indent}# ${node.doc}`);
        out.push(`${indent}${key}:`);
        emit(node.shape, `${indent}  `, path);
      } else {
        out.push(`${indent}# ${node.doc} (${node.expects}; ${envName(path)})`);
        out.push(`${indent}${key}: ${node.exampleValue ?? stringify(node.default, { flowCollectionPadding: false }).trimEnd()}`);
      }
    }
  };
  emit(settingsSchema, '', '');
  return `${out.join('\n')}\n`;
}
