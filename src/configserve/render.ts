// The config a machine receives: its profile's base Talos config, the profile's patches in order, whole extra
// documents (event sink, kernel log), then the machine's own facts; validated as Talos would before it is served.
// Pure: same input → same bytes and sha256.
import { createHash } from 'node:crypto';
import type { Document } from 'yaml';
import { documentId, findDocument, isLegacy, V1ALPHA1 } from './documents.ts';
import { applyPatch, parsePatch, upsertDocuments } from './patch.ts';
import { fromStencil } from './stencil.ts';
import { hostnameProblem, validateDocuments } from './validate.ts';
import {
  deleteKey,
  describeNode,
  findPair,
  isMap,
  isNullNode,
  nodeFrom,
  parseYamlDocuments,
  scalar,
  setKey,
  stringifyDocuments,
  toPlain,
  YAMLMap,
} from './yaml.ts';

/** What the inventory knows about one machine that ends up in its config. */
export interface MachineFacts {
  hostname?: string;
  installDisk?: string;
  installDiskSelector?: Record<string, unknown>;
  labels?: Record<string, string>;
}

export interface RenderInput {
  /** The profile's base Talos config: YAML text, possibly multi-document (talosctl gen config output). */
  base: string;
  /** Profile patches in order: strategic-merge YAML (one or more documents) or an RFC 6902 operation list. */
  patches: string[];
  /** Per-machine patch, applied last. */
  machine?: MachineFacts;
  /** Whole documents appended; a document of the same kind/name replaces the existing one. */
  extraDocuments?: string[];
}

export type RenderResult = { ok: true; yaml: string; sha256: string } | { ok: false; errors: string[] };

const fail = (errors: string[]): RenderResult => ({ ok: false, errors });
const prefixed = (prefix: string, errors: string[]): string[] => errors.map((e) => `${prefix}: ${e}`);

export function renderConfig(input: RenderInput): RenderResult {
  try {
    return fromStencil(input, renderFull) ?? renderFull(input);
  } catch (e) {
    // A bug here must become a refused config (5xx, Talos retries), never an exception in the request path.
    return fail([`internal error while rendering: ${e instanceof Error ? e.message : String(e)}`]);
  }
}

/** The profile's documents with its patches and the extra documents applied: the part every machine shares. */
type Template = { docs: Document.Parsed[] } | { errors: string[] };

/**
 * Templates by their inputs. Parsing is most of a render (a 20 KB config: ~9 ms per render before, on this VM)
 * and the machines of a storm share a handful of profiles; a profile edit changes the text, so it changes the key.
 */
const templates = new Map<string, Template>();
const MAX_TEMPLATES = 32;

function template(input: RenderInput): Template {
  const key = createHash('sha256').update(JSON.stringify([input.base, input.patches, input.extraDocuments ?? []])).digest('base64');
  let t = templates.get(key);
  if (t === undefined) {
    t = buildTemplate(input);
    if (templates.size >= MAX_TEMPLATES) templates.delete(templates.keys().next().value!);
  } else templates.delete(key);
  // Re-inserted: the Map's order is then least recently used first.
  templates.set(key, t);
  return t;
}

function buildTemplate(input: RenderInput): Template {
  const base = parseYamlDocuments(input.base);
  if (base.errors.length > 0) return { errors: prefixed('base config', base.errors) };
  if (base.docs.length === 0) return { errors: ['base config is empty'] };
  const config: Document.Parsed[] = base.docs;

  for (const [i, text] of input.patches.entries()) {
    const parsed = parsePatch(text);
    const errors = 'errors' in parsed ? parsed.errors : applyPatch(config, parsed.patch);
    if (errors.length > 0) return { errors: prefixed(`patch ${i + 1}`, errors) };
  }
  for (const [i, text] of (input.extraDocuments ?? []).entries()) {
    const parsed = parseYamlDocuments(text);
    const errors = parsed.errors.length > 0 ? parsed.errors : upsertDocuments(config, parsed.docs);
    if (errors.length > 0) return { errors: prefixed(`extra document ${i + 1}`, errors) };
  }
  return { docs: config };
}

/** The whole way for one machine: template, facts, write, read back, validate (stencil.ts avoids most of it). */
export function renderFull(input: RenderInput): RenderResult {
  const t = template(input);
  if ('errors' in t) return fail(t.errors);
  // The cached template is never edited: each machine gets its own copy.
  const config = t.docs.map((d) => d.clone() as Document.Parsed);
  if (input.machine !== undefined) {
    const errors = applyMachineFacts(config, input.machine);
    if (errors.length > 0) return fail(prefixed('machine', errors));
  }

  const yaml = stringifyDocuments(config);
  // Judge the bytes that will be served, and refuse them if writing changed what they say.
  const served = parseYamlDocuments(yaml);
  const meant = JSON.stringify(config.map((d) => toPlain(d.contents)));
  if (served.errors.length > 0 || JSON.stringify(served.docs.map((d) => toPlain(d.contents))) !== meant) {
    return fail(['internal error: the serialised config does not read back as rendered']);
  }
  const problems = validateDocuments(served.docs);
  if (problems.length > 0) return fail(problems);
  return { ok: true, yaml, sha256: createHash('sha256').update(yaml, 'utf8').digest('hex') };
}

/**
 * Talos 1.14 moves the install disk to an UnattendedInstallConfig document, which rejects machine.install beside it.
 * Its selector is a CEL expression; Talos's own generator writes `disk.dev_path == "/dev/sda"` (generate/init.go, as
 * quoted by tools that reuse it). A v1alpha1-style selector map has no checked translation, so it is refused.
 */
function unattendedInstallDisk(doc: YAMLMap, facts: MachineFacts): string[] {
  if (facts.installDiskSelector !== undefined) {
    return ['a disk selector cannot be applied to an UnattendedInstallConfig: write provisioning.diskSelector.match (CEL) in the profile'];
  }
  const disk = facts.installDisk ?? '';
  if (!/^\/[A-Za-z0-9._:+/-]+$/.test(disk)) return [`install disk ${JSON.stringify(disk)} is not a device path like /dev/sda`];
  const selector = mapAt(doc, ['provisioning', 'diskSelector']);
  if (typeof selector === 'string') return [selector];
  setKey(selector, 'match', scalar(`disk.dev_path == "${disk}"`));
  return [];
}

/** The map under `key`, created when absent or null. */
function childMap(map: YAMLMap, key: string, path: string): YAMLMap | string {
  const existing = findPair(map, key)?.value;
  if (isMap(existing)) {
    // `network: {}` in gen-config output: what a machine adds is written in block style, not as one flow line.
    existing.flow = false;
    return existing;
  }
  if (!isNullNode(existing)) return `${path} is ${describeNode(existing)}, not a map`;
  const created = new YAMLMap();
  setKey(map, key, created);
  return created;
}

function mapAt(root: YAMLMap, path: readonly string[]): YAMLMap | string {
  let map = root;
  for (const [i, key] of path.entries()) {
    const next = childMap(map, key, path.slice(0, i + 1).join('.'));
    if (typeof next === 'string') return next;
    map = next;
  }
  return map;
}

/**
 * The per-machine patch. Hostname: the HostnameConfig document when the config has one (Talos ≥ 1.12, where it
 * conflicts with machine.network.hostname), else machine.network.hostname. An install disk given for the machine
 * drops the profile's disk selector (a selector wins over a disk in Talos); a selector given replaces the profile's.
 */
function applyMachineFacts(config: Document.Parsed[], facts: MachineFacts): string[] {
  const legacyIndex = findDocument(config, { apiVersion: '', kind: V1ALPHA1, name: '' });
  const legacy = config[legacyIndex]?.contents;
  if (!isMap(legacy)) return ['the config has no v1alpha1 document to hold the machine settings'];
  const errors: string[] = [];

  if (facts.hostname !== undefined) {
    const problem = hostnameProblem(facts.hostname);
    const hostnameDoc = config.find((d) => {
      const id = documentId(d);
      return typeof id !== 'string' && !isLegacy(id) && id.kind === 'HostnameConfig';
    })?.contents;
    if (problem !== undefined) errors.push(`hostname ${JSON.stringify(facts.hostname)} ${problem}`);
    else if (isMap(hostnameDoc)) {
      deleteKey(hostnameDoc, 'auto');
      setKey(hostnameDoc, 'hostname', scalar(facts.hostname));
    } else {
      const network = mapAt(legacy, ['machine', 'network']);
      if (typeof network === 'string') errors.push(network);
      else setKey(network, 'hostname', scalar(facts.hostname));
    }
  }

  const unattended = config.find((d) => {
    const id = documentId(d);
    return typeof id !== 'string' && id.kind === 'UnattendedInstallConfig';
  })?.contents;
  if (isMap(unattended) && (facts.installDisk !== undefined || facts.installDiskSelector !== undefined)) {
    errors.push(...unattendedInstallDisk(unattended, facts));
  } else if (facts.installDisk !== undefined || facts.installDiskSelector !== undefined) {
    const install = mapAt(legacy, ['machine', 'install']);
    if (typeof install === 'string') errors.push(install);
    else {
      if (facts.installDisk !== undefined) {
        setKey(install, 'disk', scalar(facts.installDisk));
        if (facts.installDiskSelector === undefined) deleteKey(install, 'diskSelector');
      }
      if (facts.installDiskSelector !== undefined) setKey(install, 'diskSelector', nodeFrom(facts.installDiskSelector));
    }
  }

  if (facts.labels !== undefined) {
    const labels = mapAt(legacy, ['machine', 'nodeLabels']);
    if (typeof labels === 'string') errors.push(labels);
    else for (const key of Object.keys(facts.labels).sort()) setKey(labels, key, scalar(facts.labels[key] ?? ''));
  }
  return errors;
}
