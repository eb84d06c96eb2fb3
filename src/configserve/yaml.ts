// YAML as Talos (Go yaml.v3/v4) reads it, on top of the JS `yaml` library (YAML 1.2 core).
//
// Two readings differ in ways that change a machine config:
//  - a plain `0755` is octal 493 in Go, decimal 755 in YAML 1.2; re-serialising a parsed number also loses its
//    spelling (`0755` → `755`, `1e3` → `1e+3`);
//  - Go turns `on`/`off`/`yes`/`no`/`y`/`n` into booleans when the target field is a bool, YAML 1.1 readers
//    everywhere, YAML 1.2 never.
// So: a plain leading-zero integer resolves as Go's octal; every parsed number is written back exactly as it was
// spelled; a string that a YAML 1.1 reader would take for a boolean is written quoted (Go reads a quoted `on` into a
// string field as "on" and into a bool field as true, exactly like the plain one, so quoting never changes what
// Talos sees). Everything is edited as Document nodes, so comments and scalar styles survive.
import {
  Document,
  isAlias,
  isCollection,
  isMap,
  isScalar,
  isSeq,
  Pair,
  parseAllDocuments,
  Scalar,
  visit,
  YAMLMap,
  YAMLSeq,
  type DocumentOptions,
  type Node,
  type ParseOptions,
  type ScalarTag,
  type SchemaOptions,
  type Tags,
  type ToStringOptions,
} from 'yaml';

export type YamlNode = Node;
export { isMap, isScalar, isSeq, YAMLMap, YAMLSeq };

/** Integers that Go reads differently from YAML 1.2: a bare leading zero means octal (`0755` = 493). */
const goLegacyOctal: ScalarTag = {
  identify: (value) => Number.isInteger(value),
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'GO-OCT',
  test: /^[-+]?0[0-7]+$/,
  resolve: (str) => {
    const negative = str.startsWith('-');
    const digits = str.replace(/^[-+]?0/, '');
    const value = Number.parseInt(digits, 8);
    return negative ? -value : value;
  },
  stringify: (node) => {
    const value = Number((node as Scalar).value);
    return `${value < 0 ? '-' : ''}0${Math.abs(value).toString(8)}`;
  },
};

/** A number parsed from text is written back with its original spelling, as long as it still means the same. */
function keepSpelling(tag: ScalarTag): ScalarTag {
  const original = tag.stringify;
  if (original === undefined || tag.test === undefined) return tag;
  return {
    ...tag,
    stringify(item, ctx, onComment, onChompKeep) {
      const node = item as Scalar;
      const source = node.source;
      if (typeof source === 'string' && tag.test?.test(source)) {
        const reread = tag.resolve(source, () => undefined, {} as ParseOptions);
        const rereadValue = isScalar(reread) ? reread.value : reread;
        if (Object.is(rereadValue, node.value)) return source;
      }
      return original(item, ctx, onComment, onChompKeep);
    },
  };
}

const NUMBER_TAGS = new Set(['tag:yaml.org,2002:int', 'tag:yaml.org,2002:float']);

function goTags(tags: Tags): Tags {
  const wrapped = tags.map((t) =>
    typeof t !== 'string' && !('collection' in t && t.collection) && NUMBER_TAGS.has(t.tag) ? keepSpelling(t as ScalarTag) : t,
  );
  return [keepSpelling(goLegacyOctal), ...wrapped];
}

/** Strings a YAML 1.1 reader (and Go, for bool fields) takes for booleans: always written quoted. */
const yaml11BoolWords: ScalarTag = {
  identify: (value) => typeof value === 'boolean',
  default: true,
  tag: 'tag:yaml.org,2002:bool',
  test: /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/,
  resolve: (str) => /^(?:y|Y|yes|Yes|YES|on|On|ON)$/.test(str),
};

const SCHEMA: SchemaOptions = { customTags: goTags };
// Tags beyond the core schema (!!binary, !!timestamp, !foo) stay strings carrying their tag: written back as they came.
const PARSE: ParseOptions & DocumentOptions & SchemaOptions = { ...SCHEMA, resolveKnownTags: false, uniqueKeys: true, prettyErrors: true };
const OUTPUT: DocumentOptions & SchemaOptions = { ...SCHEMA, compat: [yaml11BoolWords] };
// 4-space indentation, sequences indented: the layout of Talos's own encoder (talosctl gen config output).
const TO_STRING: ToStringOptions = { lineWidth: 0, indent: 4, indentSeq: true };

/** Limit on nodes created by expanding aliases, against alias bombs. */
const MAX_EXPANDED_NODES = 100_000;

export interface ParsedDocs {
  docs: Document.Parsed[];
  errors: string[];
}

/**
 * Parse a (possibly multi-document) YAML text the way a config or patch is read: duplicate keys are errors,
 * aliases are expanded in place (Go resolves them too, and merged output must not depend on anchors that may end
 * up in another document), empty documents are dropped (Talos skips them).
 */
export function parseYamlDocuments(text: string): ParsedDocs {
  const parsed = parseAllDocuments(text, PARSE);
  const all = Array.isArray(parsed) ? parsed : [];
  const errors: string[] = [];
  for (const doc of all) {
    for (const e of doc.errors) errors.push(describeYamlError(e.message, e.linePos?.[0]));
  }
  if (errors.length > 0) return { docs: [], errors };
  const docs: Document.Parsed[] = [];
  const mayHaveAnchors = text.includes('&') || text.includes('*');
  for (const doc of all) {
    const problem = mayHaveAnchors ? expandAliases(doc) : undefined;
    if (problem !== undefined) return { docs: [], errors: [problem] };
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    docs.push(doc);
  }
  return { docs, errors };
}

function describeYamlError(message: string, pos: { line: number; col: number } | undefined): string {
  const first = (message.split('\n')[0] ?? message).replace(/:$/, '');
  if (pos === undefined || / at line \d+/.test(first)) return `YAML: ${first}`;
  return `YAML: ${first} (line ${pos.line}, column ${pos.col})`;
}

function expandAliases(doc: Document.Parsed): string | undefined {
  let created = 0;
  let problem: string | undefined;
  visit(doc, {
    Alias(_key, alias, path) {
      const target = alias.resolve(doc);
      if (target === undefined) {
        problem = `YAML: alias *${alias.source} has no anchor`;
        return visit.BREAK;
      }
      if ((path as readonly unknown[]).includes(target)) {
        problem = `YAML: alias *${alias.source} is inside its own anchor (a recursive structure)`;
        return visit.BREAK;
      }
      const copy = target.clone() as Node;
      dropAnchors(copy);
      created += countNodes(copy);
      if (created > MAX_EXPANDED_NODES) {
        problem = `YAML: aliases expand to more than ${MAX_EXPANDED_NODES} nodes`;
        return visit.BREAK;
      }
      return copy;
    },
  });
  if (problem === undefined) dropAnchors(doc);
  return problem;
}

/** Copies must not carry the anchor: later aliases resolve to the original, and output has no anchors. */
function dropAnchors(node: Node | Document): void {
  visit(node, (_key, n) => {
    if (isScalar(n) || isMap(n) || isSeq(n)) delete n.anchor;
  });
}

function countNodes(node: unknown): number {
  if (isMap(node)) return 1 + node.items.reduce((n, p) => n + countNodes(p.key) + countNodes(p.value), 0);
  if (isSeq(node)) return 1 + node.items.reduce((n: number, i) => n + countNodes(i), 0);
  return 1;
}

/** Serialise documents with `---` between them; same nodes in → same bytes out. */
export function stringifyDocuments(docs: readonly Document[]): string {
  return docs
    .map((doc) => {
      avoidWriterQuirks(doc);
      const out = new Document(null, OUTPUT);
      out.contents = doc.contents as Node | null;
      if (doc.commentBefore) out.commentBefore = doc.commentBefore;
      if (doc.comment) out.comment = doc.comment;
      return out.toString(TO_STRING);
    })
    .join('---\n');
}

/**
 * Spellings the yaml library writes but cannot read back the same:
 * - an empty block scalar that has a comment (`content: | # c`) is written as a block holding the comment text,
 *   which reads back as "# c\n". Such a scalar is written double-quoted instead.
 * - a map used as a key is written as a compact block map after `? ` (`? ---: null` and its next key on the line
 *   after), which its parser refuses ("Nested mappings are not allowed in compact mappings"; found by the fuzz
 *   test). A collection used as a key is written in flow style instead (`? { ---, a: }`).
 * - a null item of a flow sequence read from nothing (`[&x ]`) is written as nothing, and `[  ]` reads back empty:
 *   it is written `null`.
 */
function avoidWriterQuirks(doc: Document): void {
  visit(doc, {
    Scalar(_key, node, path) {
      if ((node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED) && node.value === '') {
        node.type = Scalar.QUOTE_DOUBLE;
      }
      // An empty item of a sequence written in flow style (its own or an enclosing collection's) would vanish.
      if (node.value === null && node.source === '' && isSeq(path[path.length - 1]) && path.some((p) => isCollection(p) && p.flow)) node.source = 'null';
    },
    Pair(_key, pair) {
      if (isCollection(pair.key)) pair.key.flow = true;
    },
  });
}

/** A new document holding `node`, using the Go-faithful schema. */
export function newDocument(node: Node): Document.Parsed {
  const doc = new Document(null, PARSE) as Document.Parsed;
  doc.contents = node as Document.Parsed['contents'];
  return doc;
}

/** A scalar node for a value produced by code (no source spelling: output quoting rules apply). */
export function scalar(value: string | number | boolean | null): Scalar {
  return new Scalar(value);
}

/** Plain JS value of a node (maps → objects with string keys, as Go and JSON see them). */
export function toPlain(node: unknown): unknown {
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) out[keyString(pair.key)] = toPlain(pair.value);
    return out;
  }
  if (isSeq(node)) return node.items.map((i) => toPlain(i));
  if (isScalar(node)) return node.value ?? null;
  if (isAlias(node)) return null;
  return node ?? null;
}

/** The string form of a map key, as it would be after a YAML → JSON conversion. */
export function keyString(key: unknown): string {
  if (isScalar(key)) return key.value === null ? 'null' : String(key.value);
  if (isMap(key) || isSeq(key)) return JSON.stringify(toPlain(key));
  return String(key);
}

/** The pair of `map` whose key reads as `key`, if any. */
export function findPair(map: YAMLMap, key: string): { key: unknown; value: unknown } | undefined {
  return map.items.find((p) => keyString(p.key) === key);
}

/** Set `key` in `map`, keeping the existing key node (and its comment) when there is one. */
export function setKey(map: YAMLMap, key: string, value: Node): void {
  const pair = findPair(map, key);
  if (pair !== undefined) pair.value = value;
  else map.items.push(new Pair(scalar(key), value));
}

export function deleteKey(map: YAMLMap, key: string): boolean {
  const index = map.items.findIndex((p) => keyString(p.key) === key);
  if (index < 0) return false;
  map.items.splice(index, 1);
  return true;
}

/** What kind of YAML thing a node is, for error messages. */
export function describeNode(node: unknown): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'null' : `a ${typeof node.value}`;
  return 'nothing';
}

export function isNullNode(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

/** Deep copy of a node (patch nodes are copied before they are grafted into a config). */
export function cloneNode<T extends Node>(node: T): T {
  return node.clone() as T;
}

/** A node for a plain value produced by code; map keys are sorted so the output never depends on key order. */
export function nodeFrom(value: unknown): YamlNode {
  if (Array.isArray(value)) {
    const seq = new YAMLSeq();
    for (const item of value) seq.items.push(nodeFrom(item));
    return seq;
  }
  if (typeof value === 'object' && value !== null) {
    const map = new YAMLMap();
    for (const key of Object.keys(value).sort()) map.items.push(new Pair(scalar(key), nodeFrom((value as Record<string, unknown>)[key])));
    return map;
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return scalar(value);
  return scalar(null);
}
