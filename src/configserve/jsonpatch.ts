// RFC 6902 JSON Patch applied to a YAML node tree (so untouched parts keep their comments and spelling).
// Talos applies these with evanphx/json-patch to the YAML → JSON form of a single-document config; the operations,
// the RFC 6901 pointers and the error cases below follow the RFC.
import { isDeepStrictEqual } from 'node:util';
import {
  cloneNode,
  deleteKey,
  describeNode,
  findPair,
  isMap,
  isScalar,
  isSeq,
  scalar,
  setKey,
  toPlain,
  type YAMLMap,
  type YamlNode,
  type YAMLSeq,
} from './yaml.ts';

export type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: YamlNode }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** Read a list of operations (already parsed from YAML or JSON). */
export function parseJsonPatch(list: YAMLSeq): { ops: JsonPatchOp[] } | { errors: string[] } {
  const ops: JsonPatchOp[] = [];
  const errors: string[] = [];
  list.items.forEach((item, i) => {
    const where = `JSON patch operation ${i + 1}`;
    if (!isMap(item)) {
      errors.push(`${where}: must be a map with op and path, not ${describeNode(item)}`);
      return;
    }
    const text = (key: string): string | undefined => {
      const v = findPair(item, key)?.value;
      return isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
    };
    const op = text('op');
    const path = text('path');
    if (op === undefined || !OPS.has(op)) {
      errors.push(`${where}: op must be one of ${[...OPS].join(', ')}`);
      return;
    }
    if (path === undefined) {
      errors.push(`${where}: path must be a string`);
      return;
    }
    const pointerProblem = pointerError(path);
    if (pointerProblem !== undefined) {
      errors.push(`${where}: path ${pointerProblem}`);
      return;
    }
    if (op === 'move' || op === 'copy') {
      const from = text('from');
      const fromProblem = from === undefined ? 'must be a string' : pointerError(from);
      if (from === undefined || fromProblem !== undefined) errors.push(`${where}: from ${fromProblem}`);
      else ops.push({ op, from, path });
    } else if (op === 'remove') {
      ops.push({ op, path });
    } else {
      const pair = findPair(item, 'value');
      if (pair === undefined) errors.push(`${where}: ${op} needs a value`);
      else ops.push({ op: op as 'add' | 'replace' | 'test', path, value: asNode(pair.value) });
    }
  });
  return errors.length > 0 ? { errors } : { ops };
}

function asNode(value: unknown): YamlNode {
  if (isMap(value) || isSeq(value) || isScalar(value)) return value;
  // `value:` with nothing after it
  return scalar(null);
}

function pointerError(pointer: string): string | undefined {
  if (pointer !== '' && !pointer.startsWith('/')) return `"${pointer}" is not a JSON pointer (must start with /)`;
  if (/~(?![01])/.test(pointer)) return `"${pointer}" has a ~ not followed by 0 or 1`;
  return undefined;
}

/** RFC 6901: "/a~1b/c~0d" → ["a/b", "c~d"]. */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const INDEX = /^(0|[1-9][0-9]*)$/;

type Located = { ok: true; node: YamlNode } | { ok: false; error: string };

function child(node: YamlNode, token: string): YamlNode | undefined {
  if (isMap(node)) {
    const pair = findPair(node, token);
    return pair === undefined ? undefined : asNode(pair.value);
  }
  if (isSeq(node) && INDEX.test(token)) {
    const item = node.items[Number(token)];
    return item === undefined ? undefined : asNode(item);
  }
  return undefined;
}

function locate(root: YamlNode, tokens: readonly string[], pointer: string): Located {
  let node = root;
  for (const token of tokens) {
    const next = child(node, token);
    if (next === undefined) return { ok: false, error: `${pointer} does not exist` };
    node = next;
  }
  return { ok: true, node };
}

type Applied = { ok: true; root: YamlNode } | { ok: false; error: string };

function add(root: YamlNode, pointer: string, value: YamlNode): Applied {
  const tokens = parsePointer(pointer);
  const last = tokens.pop();
  if (last === undefined) return { ok: true, root: value };
  const parent = locate(root, tokens, pointer);
  if (!parent.ok) return { ok: false, error: `the parent of ${pointer} does not exist` };
  const container = parent.node;
  if (isMap(container)) {
    setKey(container, last, value);
    return { ok: true, root };
  }
  if (isSeq(container)) {
    if (last === '-') container.items.push(value);
    else if (INDEX.test(last) && Number(last) <= container.items.length) container.items.splice(Number(last), 0, value);
    else return { ok: false, error: `${pointer}: index ${last} is out of range (list has ${container.items.length} items)` };
    return { ok: true, root };
  }
  return { ok: false, error: `${pointer}: the parent is ${describeNode(container)}, not a map or list` };
}

function remove(root: YamlNode, pointer: string): Applied & { removed?: YamlNode } {
  const tokens = parsePointer(pointer);
  const last = tokens.pop();
  if (last === undefined) return { ok: false, error: 'cannot remove the whole document' };
  const parent = locate(root, tokens, pointer);
  const target = parent.ok ? child(parent.node, last) : undefined;
  if (!parent.ok || target === undefined) return { ok: false, error: `${pointer} does not exist` };
  if (isMap(parent.node)) deleteKey(parent.node as YAMLMap, last);
  else (parent.node as YAMLSeq).items.splice(Number(last), 1);
  return { ok: true, root, removed: target };
}

function replace(root: YamlNode, pointer: string, value: YamlNode): Applied {
  const tokens = parsePointer(pointer);
  const last = tokens.pop();
  if (last === undefined) return { ok: true, root: value };
  const parent = locate(root, tokens, pointer);
  if (!parent.ok || child(parent.node, last) === undefined) return { ok: false, error: `${pointer} does not exist` };
  if (isMap(parent.node)) setKey(parent.node, last, value);
  else (parent.node as YAMLSeq).items[Number(last)] = value;
  return { ok: true, root };
}

function applyOne(root: YamlNode, op: JsonPatchOp): Applied {
  switch (op.op) {
    case 'add':
      return add(root, op.path, cloneNode(op.value));
    case 'remove':
      return remove(root, op.path);
    case 'replace':
      return replace(root, op.path, cloneNode(op.value));
    case 'copy': {
      const source = locate(root, parsePointer(op.from), op.from);
      if (!source.ok) return { ok: false, error: `from ${source.error}` };
      return add(root, op.path, cloneNode(source.node));
    }
    case 'move': {
      if (op.path === op.from) {
        const source = locate(root, parsePointer(op.from), op.from);
        return source.ok ? { ok: true, root } : { ok: false, error: `from ${source.error}` };
      }
      if (op.path.startsWith(`${op.from}/`)) return { ok: false, error: `cannot move ${op.from} into itself (${op.path})` };
      const taken = remove(root, op.from);
      if (!taken.ok) return { ok: false, error: `from ${taken.error}` };
      return add(taken.root, op.path, taken.removed as YamlNode);
    }
    case 'test': {
      const target = locate(root, parsePointer(op.path), op.path);
      if (!target.ok) return { ok: false, error: `test failed: ${target.error}` };
      const actual = toPlain(target.node);
      const expected = toPlain(op.value);
      // no values in the message: the tested path may hold a key, and errors end up in logs
      if (!isDeepStrictEqual(actual, expected)) return { ok: false, error: `test failed: ${op.path} does not hold the expected value` };
      return { ok: true, root };
    }
  }
}

/** Apply operations in order to a copy of `root`; all or nothing. */
export function applyJsonPatch(root: YamlNode, ops: readonly JsonPatchOp[]): Applied {
  let current = cloneNode(root);
  for (const [i, op] of ops.entries()) {
    const result = applyOne(current, op);
    if (!result.ok) return { ok: false, error: `JSON patch operation ${i + 1} (${op.op} ${op.path}): ${result.error}` };
    current = result.root;
  }
  return { ok: true, root: current };
}
