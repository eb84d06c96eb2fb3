// Per-machine configs without a per-machine YAML round trip. Machines of one profile differ only in a few scalars
// (hostname, label values); everything else — which documents, which keys, the install disk — is the same for every
// machine whose facts have the same shape. So the full render (parse, patch, write, read back, validate) runs once
// per shape, with a unique token standing in for each varying value, and each machine's config is that text with
// the tokens replaced by its own values written as YAML scalars.
//
// Why the result is the config the full render would give, byte for byte:
//  - the shape's render is judged in full (read back, validated) like any other;
//  - a token must sit exactly once in the text, as a block-map value alone on its line (`key: TOKEN\n`), where a
//    single-line scalar means the same whatever it is; a value is taken only if the library writes it on one line
//    and that line reads back as the value;
//  - the only checks of a config that look at these values (hostname and label syntax) are run on the real values;
//    a value that fails them goes the full way, which reports why.
// Anything else (flow position, a token the template already contains …) also goes the full way.
import { createHash, randomBytes } from 'node:crypto';
import type { MachineFacts, RenderInput, RenderResult } from './render.ts';
import { hostnameProblem, labelProblem } from './validate.ts';
import { newDocument, parseYamlDocuments, scalar, setKey, stringifyDocuments, toPlain, YAMLMap } from './yaml.ts';

/** Where a machine's own value goes: its hostname, or the value of one of its labels. */
type Slot = { hostname: true } | { label: string };

/** A shape's config text cut at its slots: parts[0] slot[0] parts[1] … parts[n]. */
interface Stencil {
  parts: string[];
  slots: Slot[];
}

/** Stencils by shape; null: this shape cannot be stencilled, every machine takes the full render. */
const stencils = new Map<string, Stencil | null>();
const MAX_STENCILS = 256;

/** The config from the shape's stencil, or undefined when only the full render can make it. */
export function fromStencil(input: RenderInput, full: (input: RenderInput) => RenderResult): RenderResult | undefined {
  const facts = input.machine;
  if (facts === undefined) return undefined;
  const key = shapeKey(input, facts);
  let stencil = stencils.get(key);
  if (stencil === undefined) {
    stencil = makeStencil(input, facts, full);
    if (stencils.size >= MAX_STENCILS) stencils.delete(stencils.keys().next().value!);
    stencils.set(key, stencil);
  }
  if (stencil === null) return undefined;
  let yaml = stencil.parts[0]!;
  for (const [i, slot] of stencil.slots.entries()) {
    const text = slotText(slot, facts);
    if (text === undefined) return undefined;
    yaml += text + stencil.parts[i + 1]!;
  }
  return { ok: true, yaml, sha256: createHash('sha256').update(yaml, 'utf8').digest('hex') };
}

/** Everything but the values that vary per machine. */
function shapeKey(input: RenderInput, facts: MachineFacts): string {
  const shape = [
    input.base,
    input.patches,
    input.extraDocuments ?? [],
    facts.hostname !== undefined,
    facts.installDisk ?? null,
    facts.installDiskSelector ?? null,
    facts.labels === undefined ? null : Object.keys(facts.labels).sort(),
  ];
  return createHash('sha256').update(JSON.stringify(shape)).digest('base64');
}

function makeStencil(input: RenderInput, facts: MachineFacts, full: (input: RenderInput) => RenderResult): Stencil | null {
  // Lowercase letters and digits: a valid hostname and label value, so the shape validates as a real machine would.
  const nonce = randomBytes(6).toString('hex');
  const tokens = new Map<string, Slot>();
  const token = (slot: Slot): string => {
    const t = `heph${nonce}v${tokens.size}`;
    tokens.set(t, slot);
    return t;
  };
  const shaped: MachineFacts = { ...facts };
  if (facts.hostname !== undefined) shaped.hostname = token({ hostname: true });
  if (facts.labels !== undefined) {
    shaped.labels = Object.fromEntries(Object.keys(facts.labels).map((k) => [k, token({ label: k })]));
  }
  const r = full({ ...input, machine: shaped });
  if (!r.ok) return null;

  const parts: string[] = [];
  const slots: Slot[] = [];
  const found = [...tokens].map(([t, slot]) => ({ t, slot, at: r.yaml.indexOf(t) })).sort((a, b) => a.at - b.at);
  let from = 0;
  for (const { t, slot, at } of found) {
    if (at < from || r.yaml.includes(t, at + 1) || r.yaml.slice(at - 2, at) !== ': ' || r.yaml[at + t.length] !== '\n') return null;
    parts.push(r.yaml.slice(from, at));
    slots.push(slot);
    from = at + t.length;
  }
  parts.push(r.yaml.slice(from));
  return { parts, slots };
}

/** The machine's value for a slot as it is written in a block map, or undefined if it must take the full render. */
function slotText(slot: Slot, facts: MachineFacts): string | undefined {
  if ('hostname' in slot) {
    const name = facts.hostname;
    return name === undefined || hostnameProblem(name) !== undefined ? undefined : scalarText(name);
  }
  const value = facts.labels?.[slot.label];
  return value === undefined || labelProblem(slot.label, value) !== undefined ? undefined : scalarText(value);
}

/** How the config writer spells `value` as a map value, if that is one line that reads back as `value`. */
function scalarText(value: string): string | undefined {
  return writtenAsIs(value) ? value : scalarTextByRoundTrip(value);
}

// The round trip below costs ~50 µs alone and ~0.28 ms a config in a 1000-machine boot storm (5% of the main
// thread, measured with perf), and hostnames are unique, so nothing can be cached. A value that starts with a
// letter, ends with a letter or digit and has only letters, digits, `.`, `_` and `-` is written plain and reads back
// as itself: it has no indicator, space, `:` or `#` that the writer quotes, cannot be a number (those start with a
// digit, sign or `.`) or a document marker, and is never folded (lineWidth 0). What is left are the words the
// writer quotes as bool or null (core `true`/`null`…, YAML 1.1 `yes`/`on`/`y`…): those, in any case, take the round
// trip. Checked against it by the stencil tests.
const PLAIN_AS_IS = /^[A-Za-z](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const TYPED_WORD = /^(?:true|false|null|yes|no|on|off|y|n)$/i;

/** Whether `value` is written as itself, with no need for the round trip. Exported for tests. */
export function writtenAsIs(value: string): boolean {
  return PLAIN_AS_IS.test(value) && !TYPED_WORD.test(value);
}

/** scalarText the slow way, by writing and reading back; exported for tests. */
export function scalarTextByRoundTrip(value: string): string | undefined {
  const map = new YAMLMap();
  setKey(map, 'v', scalar(value));
  const text = stringifyDocuments([newDocument(map)]);
  if (!text.startsWith('v: ') || text.indexOf('\n') !== text.length - 1) return undefined;
  const back = parseYamlDocuments(text);
  if (back.errors.length > 0 || back.docs.length !== 1 || (toPlain(back.docs[0]!.contents) as { v?: unknown }).v !== value) return undefined;
  return text.slice(3, -1);
}
