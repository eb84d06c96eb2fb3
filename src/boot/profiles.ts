import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, relative } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { Asset, AssetStore } from '../assets/store.ts';
import type { DB } from '../inventory/db.ts';
import { isSafeKernelArg } from '../ipxe/scripts.ts';
import { parseHostname, parseMac, parseUuid, talosArch } from '../ipxe/identity.ts';
import type { Selector, SelectorMatch } from './selectors.ts';

/** A validated profile, its files read: everything needed to render a script and a config. */
export interface Profile {
  name: string;
  source: string;
  talosVersion: string;
  /** Force one Talos arch; otherwise the machine's arch picks the assets. */
  arch?: 'amd64' | 'arm64';
  kernelArgs: string[];
  /** Base Talos machine config (multi-document YAML text). */
  base: string;
  /** Patch texts (strategic merge or RFC 6902), applied in order. */
  patches: string[];
  install: { disk?: string; diskSelector?: Record<string, unknown> };
}

export interface Catalog {
  profiles: Map<string, Profile>;
  selectors: Selector[];
  /** Problems found while loading; the loader keeps every definition that is valid on its own. */
  errors: string[];
}

/** What the official v1.13 metal images boot with (protocols.md §1.1); profiles may replace it. */
export const DEFAULT_KERNEL_ARGS = [
  'talos.platform=metal',
  'console=tty0',
  'init_on_alloc=1',
  'slab_nomerge=',
  'pti=on',
  'consoleblank=0',
  'nvme_core.io_timeout=4294967295',
  'printk.devkmsg=on',
  'selinux=1',
  'module.sig_enforce=1',
  'proc_mem.force_override=never',
];

const NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION = /^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?$/;
const DISK = /^\/dev\/[A-Za-z0-9/_.-]+$/;

class Invalid extends Error {}

function fail(msg: string): never {
  throw new Invalid(msg);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what}: expected a mapping`);
  return v as Record<string, unknown>;
}

function only(o: Record<string, unknown>, keys: string[], what: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${what}: unknown key "${k}" (known: ${keys.join(', ')})`);
}

function strings(v: unknown, what: string, check: (s: string) => string | undefined): string[] {
  const list = Array.isArray(v) ? v : [v];
  return list.map((x, i) => {
    const ok = typeof x === 'string' ? check(x) : undefined;
    if (ok === undefined) fail(`${what}${list.length > 1 ? ` item ${i + 1}` : ''}: ${JSON.stringify(x)} is not valid`);
    return ok;
  });
}

/** Reads a file named by a profile, which must stay inside the profiles directory. */
function readRef(dir: string | undefined, ref: string, what: string): string {
  if (!dir) fail(`${what}: names file ${ref}, but profiles.dir is not set`);
  const rel = normalize(ref);
  if (isAbsolute(rel) || rel.startsWith('..') || relative(dir, join(dir, rel)).startsWith('..')) fail(`${what}: ${ref} must be a path inside profiles.dir`);
  try {
    return readFileSync(join(dir, rel), 'utf8');
  } catch (err) {
    return fail(`${what}: cannot read ${ref}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function parseProfile(raw: unknown, source: string, dir: string | undefined): Profile {
  const o = obj(raw, 'profile');
  only(o, ['kind', 'name', 'talosVersion', 'arch', 'kernelArgs', 'base', 'baseInline', 'patches', 'install'], `profile ${String(o.name ?? '?')}`);
  if (typeof o.name !== 'string' || !NAME.test(o.name)) fail(`profile name ${JSON.stringify(o.name)}: expected lowercase letters, digits and dashes`);
  const what = `profile ${o.name}`;
  if (typeof o.talosVersion !== 'string' || !VERSION.test(o.talosVersion)) fail(`${what}: talosVersion must look like v1.13.9`);
  if (o.arch !== undefined && o.arch !== 'amd64' && o.arch !== 'arm64') fail(`${what}: arch must be amd64 or arm64`);
  const kernelArgs = o.kernelArgs === undefined ? DEFAULT_KERNEL_ARGS : strings(o.kernelArgs, `${what}: kernelArgs`, (a) => (isSafeKernelArg(a) && !a.startsWith('talos.config') && !a.startsWith('initrd=') ? a : undefined));
  for (const required of ['talos.platform=metal', 'pti=on']) if (!kernelArgs.includes(required)) fail(`${what}: kernelArgs must include ${required} (Talos refuses to boot without it)`);
  if (!kernelArgs.some((a) => a === 'slab_nomerge' || a === 'slab_nomerge=')) fail(`${what}: kernelArgs must include slab_nomerge (Talos refuses to boot without it)`);
  if ((o.base === undefined) === (o.baseInline === undefined)) fail(`${what}: give exactly one of base (a file) or baseInline (the YAML itself)`);
  const base = typeof o.base === 'string' ? readRef(dir, o.base, `${what}: base`) : typeof o.baseInline === 'string' ? o.baseInline : fail(`${what}: base must be a file name, baseInline a YAML string`);
  const patches = (o.patches === undefined ? [] : Array.isArray(o.patches) ? o.patches : fail(`${what}: patches must be a list`)).map((p, i) => {
    if (typeof p === 'string') return readRef(dir, p, `${what}: patch ${i + 1}`);
    const inline = obj(p, `${what}: patch ${i + 1}`);
    only(inline, ['inline'], `${what}: patch ${i + 1}`);
    return typeof inline.inline === 'string' ? inline.inline : stringify(inline.inline);
  });
  const inst = o.install === undefined ? {} : obj(o.install, `${what}: install`);
  only(inst, ['disk', 'diskSelector'], `${what}: install`);
  const install: Profile['install'] = {};
  if (inst.disk !== undefined) install.disk = typeof inst.disk === 'string' && DISK.test(inst.disk) ? inst.disk : fail(`${what}: install.disk must be a device path such as /dev/sda`);
  if (inst.diskSelector !== undefined) install.diskSelector = obj(inst.diskSelector, `${what}: install.diskSelector`);
  const p: Profile = { name: o.name, source, talosVersion: o.talosVersion, kernelArgs, base, patches, install };
  if (o.arch === 'amd64' || o.arch === 'arm64') p.arch = o.arch;
  return p;
}

export function parseSelector(raw: unknown, source: string): Selector {
  const o = obj(raw, 'selector');
  only(o, ['kind', 'name', 'profile', 'match', 'autoAccept'], `selector ${String(o.name ?? '?')}`);
  if (typeof o.name !== 'string' || !NAME.test(o.name)) fail(`selector name ${JSON.stringify(o.name)}: expected lowercase letters, digits and dashes`);
  const what = `selector ${o.name}`;
  if (typeof o.profile !== 'string' || !NAME.test(o.profile)) fail(`${what}: profile must name a profile`);
  if (o.autoAccept !== undefined && typeof o.autoAccept !== 'boolean') fail(`${what}: autoAccept must be true or false`);
  const m = o.match === undefined ? {} : obj(o.match, `${what}: match`);
  only(m, ['mac', 'uuid', 'serial', 'arch', 'hostname', 'labels'], `${what}: match`);
  const match: SelectorMatch = {};
  if (m.mac !== undefined) match.mac = strings(m.mac, `${what}: match.mac`, parseMac);
  if (m.uuid !== undefined) match.uuid = strings(m.uuid, `${what}: match.uuid`, (u) => parseUuid(u).ok ? (parseUuid(u) as { uuid?: string }).uuid : undefined);
  if (m.serial !== undefined) match.serial = strings(m.serial, `${what}: match.serial`, (s) => (s.length > 0 && s.length <= 64 ? s : undefined));
  if (m.arch !== undefined) match.arch = strings(m.arch, `${what}: match.arch`, (a) => (/^[a-z0-9_]{2,16}$/.test(a) ? a : undefined));
  if (m.hostname !== undefined) match.hostname = strings(m.hostname, `${what}: match.hostname`, parseHostname);
  if (m.labels !== undefined) {
    const labels = obj(m.labels, `${what}: match.labels`);
    match.labels = {};
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') fail(`${what}: label ${k} must be a scalar`);
      match.labels[k] = String(v);
    }
  }
  return { name: o.name, profile: o.profile, match, autoAccept: o.autoAccept === true, source };
}

/** Adds a definition to the catalog, or records why it is invalid. */
function add(c: Catalog, raw: unknown, source: string, dir: string | undefined): void {
  try {
    const kind = obj(raw, source).kind;
    if (kind === 'Profile') {
      const p = parseProfile(raw, source, dir);
      const prev = c.profiles.get(p.name);
      if (prev) fail(`profile ${p.name} is defined twice (${prev.source} and ${source})`);
      c.profiles.set(p.name, p);
    } else if (kind === 'Selector') {
      const s = parseSelector(raw, source);
      const prev = c.selectors.find((x) => x.name === s.name);
      if (prev) fail(`selector ${s.name} is defined twice (${prev.source} and ${source})`);
      c.selectors.push(s);
    } else fail(`kind must be Profile or Selector, not ${JSON.stringify(kind)}`);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    c.errors.push(`${source}: ${err.message}`);
  }
}

/**
 * Profiles and selectors from the YAML files at the top of `dir` (each may hold several documents) and from the
 * inventory tables. Files referenced by profiles are read now, so a broken reference shows at load time.
 */
export function loadCatalog(dir: string | undefined, db: DB | undefined): Catalog {
  const c: Catalog = { profiles: new Map(), selectors: [], errors: [] };
  if (dir) {
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort();
    } catch (err) {
      c.errors.push(`profiles.dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    for (const n of names) {
      const file = join(dir, n);
      if (!statSync(file).isFile()) continue;
      const docs = parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true });
      for (const [i, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
        const where = `${n}#${i + 1}`;
        if (doc.errors[0]) {
          c.errors.push(`${where}: not valid YAML: ${doc.errors[0].message.split('\n')[0]}`);
          continue;
        }
        const js = doc.toJS() as unknown;
        if (js !== null && js !== undefined) add(c, js, where, dir);
      }
    }
  }
  if (db) {
    for (const r of db.prepare<[], { name: string; spec: string; source: string }>('SELECT name, spec, source FROM profiles ORDER BY name').all()) {
      add(c, { ...(JSON.parse(r.spec) as Record<string, unknown>), kind: 'Profile', name: r.name }, `inventory profile ${r.name}`, dir);
    }
    for (const r of db.prepare<[], { name: string; profile: string; match: string; auto_accept: number }>('SELECT name, profile, match, auto_accept FROM selectors ORDER BY name').all()) {
      add(c, { kind: 'Selector', name: r.name, profile: r.profile, match: JSON.parse(r.match) as unknown, autoAccept: r.auto_accept !== 0 }, `inventory selector ${r.name}`, dir);
    }
  }
  c.selectors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const s of c.selectors) if (!c.profiles.has(s.profile)) c.errors.push(`${s.source}: selector ${s.name} names profile ${s.profile}, which does not exist`);
  return c;
}

/**
 * The catalog the boot path reads: reloaded at most every `maxAgeMs`, so edits to the directory or the tables take
 * effect without a restart, and a boot storm does not re-read files per request.
 */
export class CatalogCache {
  private current: { at: number; catalog: Catalog } | undefined;

  constructor(
    private readonly load: () => Catalog,
    private readonly maxAgeMs = 2000,
    private readonly onErrors: (errors: string[]) => void = () => {},
  ) {}

  get(now = Date.now()): Catalog {
    if (!this.current || now - this.current.at > this.maxAgeMs) {
      const catalog = this.load();
      if (catalog.errors.length && JSON.stringify(catalog.errors) !== JSON.stringify(this.current?.catalog.errors)) this.onErrors(catalog.errors);
      this.current = { at: now, catalog };
    }
    return this.current.catalog;
  }
}

/** The profile's kernel and initrd for a machine, or why they cannot be served. */
export async function profileAssets(store: AssetStore, profile: Profile, machineArch: string | null): Promise<{ kernel: Asset; initrd: Asset } | { problem: string }> {
  const arch = profile.arch ?? talosArch(machineArch);
  if (!arch) return { problem: `the machine's architecture (${machineArch ?? 'unknown'}) has no Talos build` };
  const kernel = store.find(profile.talosVersion, arch, `vmlinuz-${arch}`);
  const initrd = store.find(profile.talosVersion, arch, `initramfs-${arch}.xz`);
  if (!kernel || !initrd) return { problem: `Talos ${profile.talosVersion} ${arch} assets are not imported (heph assets import)` };
  for (const a of [kernel, initrd]) {
    const problem = await store.problem(a);
    if (problem) return { problem };
  }
  return { kernel, initrd };
}
