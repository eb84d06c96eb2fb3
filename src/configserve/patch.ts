// Talos config patches (protocols.md §3.5): strategic merge (a partial config, possibly multi-document, with
// `$patch: delete` markers) and RFC 6902 JSON patches (single-document configs only).
//
// Strategic merge, as Talos's typed merge does it:
//  - maps merge key by key, recursively;
//  - a patch scalar replaces the base one, except an empty string or 0 (Go's zero values never override; false does);
//    null in a patch changes nothing;
//  - lists append, except the `merge:"replace"` fields (replaced) and the keyed lists (items matched by a key are
//    merged, others appended) listed in LIST_RULES;
//  - patch documents match config documents by apiVersion + kind (+ name); unmatched ones are appended.
// `$patch: delete` (all collected first, applied before the merge, as Talos does):
//  - on a map value: removes that key (`hostname: {$patch: delete}`);
//  - on a list item: removes the first base item whose first other key has the same value
//    (`- {interface: eth0, $patch: delete}`);
//  - at a document root: removes the whole (non-v1alpha1) document.
import { isDeepStrictEqual } from 'node:util';
import type { Document } from 'yaml';
import { describeDoc, documentId, findDocument, isLegacy, type DocId } from './documents.ts';
import { applyJsonPatch, parseJsonPatch, type JsonPatchOp } from './jsonpatch.ts';
import {
  cloneNode,
  deleteKey,
  describeNode,
  findPair,
  isMap,
  isNullNode,
  isScalar,
  isSeq,
  keyString,
  newDocument,
  parseYamlDocuments,
  setKey,
  toPlain,
  type YAMLMap,
  type YamlNode,
  type YAMLSeq,
} from './yaml.ts';

export type Patch = { type: 'strategic'; docs: Document.Parsed[] } | { type: 'json6902'; ops: JsonPatchOp[] };

interface ListRule {
  /** Document kind ('v1alpha1' for the v1alpha1 document). */
  kind: string;
  /** Keys from the document root; '*' stands for any item of a list. */
  path: string[];
  /** List replaced as a whole instead of appended. */
  replace?: true;
  /** Items with an equal value under one of these keys are merged instead of appended. */
  mergeKeys?: string[];
}

/** The lists Talos does not simply append (protocols.md §3.5). */
const LIST_RULES: readonly ListRule[] = [
  { kind: 'v1alpha1', path: ['cluster', 'network', 'podSubnets'], replace: true },
  { kind: 'v1alpha1', path: ['cluster', 'network', 'serviceSubnets'], replace: true },
  { kind: 'v1alpha1', path: ['cluster', 'apiServer', 'auditPolicy'], replace: true },
  { kind: 'v1alpha1', path: ['machine', 'network', 'interfaces'], mergeKeys: ['interface', 'deviceSelector'] },
  { kind: 'v1alpha1', path: ['machine', 'network', 'interfaces', '*', 'vlans'], mergeKeys: ['vlanId'] },
  { kind: 'ExtensionServiceConfig', path: ['configFiles'], mergeKeys: ['mountPath'] },
  { kind: 'NetworkRuleConfig', path: ['ingress'], replace: true },
  { kind: 'NetworkRuleConfig', path: ['portSelector', 'ports'], replace: true },
];

function ruleFor(kind: string, path: readonly string[]): ListRule | undefined {
  return LIST_RULES.find(
    (r) => r.kind === kind && r.path.length === path.length && r.path.every((p, i) => p === '*' || p === path[i]),
  );
}

class PatchError extends Error {}

const where = (path: readonly string[]): string => (path.length === 0 ? '(document root)' : path.join('.'));

/**
 * Read one patch text. Like Talos's loader: a YAML/JSON list is an RFC 6902 patch, one or more maps are a
 * strategic-merge patch.
 */
export function parsePatch(text: string): { patch: Patch } | { errors: string[] } {
  const { docs, errors } = parseYamlDocuments(text);
  if (errors.length > 0) return { errors };
  if (docs.length === 0) return { errors: ['patch is empty'] };
  const first = docs[0]?.contents;
  if (docs.length === 1 && isSeq(first)) {
    const parsed = parseJsonPatch(first);
    return 'errors' in parsed ? parsed : { patch: { type: 'json6902', ops: parsed.ops } };
  }
  for (const [i, doc] of docs.entries()) {
    if (!isMap(doc.contents)) return { errors: [`patch document ${i + 1} is ${describeNode(doc.contents)}, not a map`] };
  }
  return { patch: { type: 'strategic', docs } };
}

/** Apply one patch to a config (the list of documents is changed in place; after an error, discard it). */
export function applyPatch(config: Document.Parsed[], patch: Patch): string[] {
  try {
    if (patch.type === 'json6902') return applyJson6902(config, patch.ops);
    return applyStrategic(config, patch.docs);
  } catch (e) {
    if (e instanceof PatchError) return [e.message];
    throw e;
  }
}

function applyJson6902(config: Document.Parsed[], ops: readonly JsonPatchOp[]): string[] {
  // Talos's own words (configpatcher/json6902.go): every gen-config output since 1.12 is multi-document.
  if (config.length > 1) return ['JSON6902 patches are not supported for multi-document machine configuration'];
  const doc = config[0];
  if (doc === undefined || doc.contents === null) return ['JSON6902 patch on an empty config'];
  const result = applyJsonPatch(doc.contents, ops);
  if (!result.ok) return [result.error];
  if (!isMap(result.root)) return [`JSON patch left the config as ${describeNode(result.root)}, not a map`];
  doc.contents = result.root as Document.Parsed['contents'];
  return [];
}

interface DeleteSelector {
  doc: DocId;
  path: string[];
  /** For list items: the first key/value of the item. */
  item?: { key: string; value: string };
}

function applyStrategic(config: Document.Parsed[], patchDocs: readonly Document.Parsed[]): string[] {
  const selectors: DeleteSelector[] = [];
  const merges: { id: DocId; root: YAMLMap }[] = [];
  for (const [i, original] of patchDocs.entries()) {
    const id = documentId(original);
    if (typeof id === 'string') return [`patch document ${i + 1}: ${id}`];
    const root = cloneNode(original.contents as YAMLMap);
    if (collectDeletes(root, [], id, selectors, false)) continue;
    if (onlyIdentity(root)) continue;
    merges.push({ id, root });
  }
  for (const selector of selectors) applyDelete(config, selector);
  for (const { id, root } of merges) {
    const index = findDocument(config, id);
    const target = index < 0 ? undefined : config[index];
    if (target === undefined) config.push(newDocument(root));
    else target.contents = mergeNode(target.contents, root, [], id.kind) as Document.Parsed['contents'];
  }
  return [];
}

/** Talos drops a patch document left with nothing but these keys (decoder isEmptyDoc). */
function onlyIdentity(root: YAMLMap): boolean {
  return root.items.every((p) => ['version', 'kind', 'name'].includes(keyString(p.key)));
}

/**
 * Remove `$patch: delete` markers from a patch node, recording what they delete. Returns true when `node` itself
 * is to be removed from its parent (it was a marker, or removing markers emptied it).
 */
function collectDeletes(node: unknown, path: string[], doc: DocId, out: DeleteSelector[], inList: boolean): boolean {
  if (isMap(node)) {
    const marker = findPair(node, '$patch');
    if (marker !== undefined) {
      const directive = isScalar(marker.value) ? marker.value.value : undefined;
      if (directive !== 'delete') throw new PatchError(`${where(path)}: unsupported $patch directive (only "$patch: delete")`);
      out.push(deleteSelector(node, path, doc, inList));
      return true;
    }
    for (let i = 0; i < node.items.length; i++) {
      const pair = node.items[i];
      if (pair === undefined) continue;
      if (collectDeletes(pair.value, [...path, keyString(pair.key)], doc, out, false)) {
        node.items.splice(i, 1);
        i--;
        if (node.items.length === 0) return true;
      }
    }
    return false;
  }
  if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) {
      if (collectDeletes(node.items[i], [...path, `[${i}]`], doc, out, true)) {
        node.items.splice(i, 1);
        i--;
        if (node.items.length === 0) return true;
      }
    }
  }
  return false;
}

function deleteSelector(node: YAMLMap, path: string[], doc: DocId, inList: boolean): DeleteSelector {
  if (inList) {
    if (path.slice(0, -1).some((p) => p.startsWith('['))) {
      throw new PatchError(`${where(path)}: $patch: delete of a list item is only supported for lists outside lists`);
    }
    const pair = node.items.find((p) => keyString(p.key) !== '$patch');
    if (pair === undefined || !isScalar(pair.value)) {
      throw new PatchError(`${where(path)}: a list item with $patch: delete needs a key: value naming the item`);
    }
    return { doc, path, item: { key: keyString(pair.key), value: scalarText(pair.value) } };
  }
  if (path.some((p) => p.startsWith('['))) {
    throw new PatchError(`${where(path)}: cannot delete a key inside a list item`);
  }
  if (path.length === 0 && isLegacy(doc)) throw new PatchError("can't delete the root of the v1alpha1 document");
  return { doc, path };
}

function scalarText(node: unknown): string {
  if (!isScalar(node)) return '';
  return node.value === null ? '' : String(node.value);
}

function applyDelete(config: Document.Parsed[], sel: DeleteSelector): void {
  const at = `$patch: delete of ${where(sel.path)} in ${describeDoc(sel.doc)}`;
  const index = findDocument(config, sel.doc);
  const doc = index < 0 ? undefined : config[index];
  if (doc === undefined) throw new PatchError(`${at}: the config has no such document`);
  if (sel.path.length === 0) {
    config.splice(index, 1);
    return;
  }
  const parentPath = sel.path.slice(0, -1);
  let node: unknown = doc.contents;
  for (const key of parentPath) {
    const next = isMap(node) ? findPair(node, key)?.value : undefined;
    if (next === undefined || isNullNode(next)) throw new PatchError(`${at}: lookup failed (${key} is missing)`);
    node = next;
  }
  if (sel.item !== undefined) {
    const { key, value } = sel.item;
    const list = node;
    const found = isSeq(list)
      ? list.items.findIndex((item) => isMap(item) && scalarText(findPair(item, key)?.value) === value)
      : -1;
    if (!isSeq(list) || found < 0) throw new PatchError(`${at}: lookup failed (no item with ${key}: ${value})`);
    list.items.splice(found, 1);
    return;
  }
  // A missing leaf is already deleted; Talos zeroes struct fields that are absent without complaint.
  const leaf = sel.path[sel.path.length - 1] as string;
  if (isMap(node)) deleteKey(node, leaf);
  else throw new PatchError(`${at}: lookup failed (the parent is ${describeNode(node)})`);
}

function isZeroScalar(node: unknown): boolean {
  if (!isScalar(node)) return false;
  return node.value === null || node.value === '' || node.value === 0;
}

/**
 * Merge `patch` into `base`; returns the merged node. Base nodes are changed in place and patch nodes are moved
 * into the result, not copied: applyStrategic works on its own copy of the patch.
 */
function mergeNode(base: unknown, patch: YamlNode, path: string[], kind: string): YamlNode {
  if (isNullNode(patch)) return base as YamlNode;
  if (isNullNode(base)) return patch;
  const rule = ruleFor(kind, path);
  if (rule?.replace === true) return patch;
  // `network: {}` in gen-config output must not turn everything merged into it into one flow line.
  if ((isMap(base) && isMap(patch)) || (isSeq(base) && isSeq(patch))) base.flow = base.flow === true && patch.flow === true;
  if (isMap(base) && isMap(patch)) {
    for (const [i, pair] of patch.items.entries()) {
      const key = keyString(pair.key);
      const existing = findPair(base, key);
      if (existing === undefined) {
        // the parser hangs a comment above a map's first key on the map itself: keep it with that key
        if (i === 0 && patch.commentBefore && isScalar(pair.key) && !pair.key.commentBefore) pair.key.commentBefore = patch.commentBefore;
        base.items.push(pair);
      } else if (!isNullNode(pair.value)) {
        setKey(base, key, mergeNode(existing.value, pair.value as YamlNode, [...path, key], kind));
      }
    }
    return base;
  }
  if (isSeq(base) && isSeq(patch)) {
    if (rule?.mergeKeys !== undefined) return mergeKeyedList(base, patch, path, kind, rule.mergeKeys);
    base.items.push(...patch.items);
    return base;
  }
  if (isScalar(base) && isScalar(patch)) {
    if (typeof patch.value !== 'boolean' && isZeroScalar(patch)) return base;
    return patch;
  }
  throw new PatchError(`${where(path)}: cannot merge ${describeNode(patch)} into ${describeNode(base)}`);
}

function mergeKeyedList(base: YAMLSeq, patch: YAMLSeq, path: string[], kind: string, keys: readonly string[]): YAMLSeq {
  for (const item of patch.items) {
    const index = isMap(item) ? base.items.findIndex((b) => isMap(b) && sameKey(b, item, keys)) : -1;
    if (index < 0) base.items.push(item);
    else base.items[index] = mergeNode(base.items[index], item as YamlNode, [...path, '*'], kind);
  }
  return base;
}

function sameKey(a: YAMLMap, b: YAMLMap, keys: readonly string[]): boolean {
  return keys.some((key) => {
    const va = findPair(a, key)?.value;
    const vb = findPair(b, key)?.value;
    if (isNullNode(va) || isNullNode(vb) || isZeroScalar(vb)) return false;
    return isDeepStrictEqual(toPlain(va), toPlain(vb));
  });
}

/** Put whole documents into a config: one with the same identity is replaced in place, others are appended. */
export function upsertDocuments(config: Document.Parsed[], docs: readonly Document.Parsed[]): string[] {
  for (const [i, doc] of docs.entries()) {
    const id = documentId(doc);
    if (typeof id === 'string') return [`document ${i + 1}: ${id}`];
    if (isLegacy(id)) return ['the v1alpha1 document cannot be replaced as an extra document'];
    const index = findDocument(config, id);
    if (index < 0) config.push(doc);
    else config[index] = doc;
  }
  return [];
}
