import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { newDocument, nodeFrom, parseYamlDocuments, stringifyDocuments, toPlain } from '../../src/configserve/yaml.ts';

/** What `text` parses to is what its written form parses to, with no errors on the way back. */
function assertReadsBackSame(text: string): void {
  const first = parseYamlDocuments(text);
  if (first.errors.length > 0) return;
  const written = stringifyDocuments(first.docs);
  const second = parseYamlDocuments(written);
  assert.deepEqual(second.errors, [], written);
  assert.deepEqual(second.docs.map((d) => toPlain(d.contents)), first.docs.map((d) => toPlain(d.contents)), written);
}

function roundTrip(text: string): string {
  const { docs, errors } = parseYamlDocuments(text);
  assert.deepEqual(errors, []);
  return stringifyDocuments(docs);
}

function valueOf(text: string): unknown {
  const { docs, errors } = parseYamlDocuments(text);
  assert.deepEqual(errors, []);
  return (toPlain(docs[0]?.contents) as Record<string, unknown>)['v'];
}

describe('configserve YAML: what the user wrote is what Talos (Go yaml.v3) reads', () => {
  // [written by the user, written back by us, the value as Go reads it]
  const parsed: [string, string, unknown][] = [
    ['v: 0755', 'v: 0755', 0o755], // Go: octal. YAML 1.2 would say 755 and re-serialise it as 755.
    ['v: -0644', 'v: -0644', -0o644],
    ['v: "0755"', 'v: "0755"', '0755'], // a quoted string stays a quoted string
    ["v: '0755'", "v: '0755'", '0755'],
    ['v: 0o755', 'v: 0o755', 0o755],
    ['v: 0x1F', 'v: 0x1F', 31],
    ['v: 09', 'v: 09', 9], // not octal for Go either: its int parse fails, its float parse gives 9
    ['v: 1e3', 'v: 1e3', 1000], // spelling kept, not 1e+3
    ['v: 1.50', 'v: 1.50', 1.5],
    ['v: 7445', 'v: 7445', 7445],
    ['v: on', 'v: "on"', 'on'], // quoted on output: Go reads a quoted "on" exactly like a plain one
    ['v: off', 'v: "off"', 'off'],
    ['v: yes', 'v: "yes"', 'yes'],
    ['v: N', 'v: "N"', 'N'],
    ['v: "yes"', 'v: "yes"', 'yes'],
    ['v: true', 'v: true', true],
    ['v: ~', 'v: ~', null],
    ['v: !!str 0755', 'v: !!str "0755"', '0755'],
  ];
  for (const [input, output, value] of parsed) {
    it(`${input} → ${output}`, () => {
      assert.equal(roundTrip(`${input}\n`), `${output}\n`);
      assert.deepEqual(valueOf(`${input}\n`), value);
    });
  }

  // strings produced by code (a hostname, a label) that a YAML reader could take for something else
  const produced: [unknown, string][] = [
    ['0755', 'v: "0755"'],
    ['on', 'v: "on"'],
    ['no', 'v: "no"'],
    ['1e3', 'v: "1e3"'],
    ['true', 'v: "true"'],
    ['null', 'v: "null"'],
    ['', 'v: ""'],
    ['0x1F', 'v: "0x1F"'],
    ['r1', 'v: r1'],
    [493, 'v: 493'],
    [false, 'v: false'],
  ];
  for (const [value, output] of produced) {
    it(`produced ${JSON.stringify(value)} → ${output}`, () => {
      const text = stringifyDocuments([newDocument(nodeFrom({ v: value }))]);
      assert.equal(text, `${output}\n`);
      assert.deepEqual(valueOf(text), value, 'reads back as the same value');
    });
  }

  it('keeps comments and block scalars', () => {
    const text = '# head\nmachine:\n    # before type\n    type: worker # role\n    content: |\n        line 1\n        line 2\n';
    assert.equal(roundTrip(text), text);
    // a comment after a map key moves to the line below it: still there, still before the same content
    assert.equal(roundTrip('machine: # the machine\n    type: worker\n'), 'machine:\n    # the machine\n    type: worker\n');
  });

  it('rejects duplicate keys with a position', () => {
    const { errors } = parseYamlDocuments('machine:\n    type: worker\n    type: controlplane\n');
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /unique.*line 3/);
  });

  it('reports syntax errors instead of throwing', () => {
    assert.ok(parseYamlDocuments('a: [1, 2\n').errors.length > 0);
    assert.ok(parseYamlDocuments('a: *nowhere\n').errors.length > 0);
  });

  it('expands aliases so no anchor is left to dangle after a merge', () => {
    assert.equal(roundTrip('a: &x\n    k: 1\nb: *x\n'), 'a:\n    k: 1\nb:\n    k: 1\n');
  });

  it('refuses an alias bomb', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) levels.push(`${'abcdefgh'[i]}: &${'abcdefgh'[i]} [${Array(10).fill(`*${'abcdefgh'[i - 1]}`).join(', ')}]`);
    const { errors } = parseYamlDocuments(`${levels.join('\n')}\n`);
    assert.match(errors.join(), /aliases expand to more than/);
  });

  it('refuses a recursive alias', () => {
    assert.match(parseYamlDocuments('a: &a [*a]\n').errors.join(), /inside its own anchor/);
  });

  it('writes tags it does not interpret back as they came', () => {
    assert.equal(roundTrip('a: !!binary aGVsbG8=\nb: !custom x\nc: 2001-12-14\n'), 'a: !!binary aGVsbG8=\nb: !custom x\nc: 2001-12-14\n');
  });

  it('never throws, and what it writes reads back the same (fuzzed YAML-like text)', () => {
    const token = fc.constantFrom('a: ', 'b: ', '- ', '&x ', '*x', '!!binary ', '!t ', '{', '}', '[', ']', ', ', "'", '"', '\n', '  ', '0755', 'on', '1e3', '# c', '---\n', '? ', '|\n', 'x');
    fc.assert(
      fc.property(fc.oneof(fc.array(token, { maxLength: 30 }).map((t) => t.join('')), fc.string({ maxLength: 60 })), assertReadsBackSame),
      { numRuns: 1000 },
    );
  });

  it('writes a map or list used as a key in flow style, and an empty flow item as null (fuzz counterexamples)', () => {
    assert.equal(roundTrip('? ? ---\n  a: \n'), '? { ---, a: }\n');
    assert.equal(roundTrip('? a: 1\n  b: 2\n: v\n'), '? { a: 1, b: 2 }\n: v\n');
    assert.equal(roundTrip('? - \n'), '? [ null ]\n');
    assert.equal(roundTrip('[&x ]\n'), '[ null ]\n');
    assert.equal(roundTrip('? - - \n'), '? [ [ null ] ]\n');
    for (const text of ['? ? ---\n  a: ', '? - x\n  - y\n: v\n', '? ? a\n  b: \n', '? - ', '[&x ]', '? - \n  - x\n: 1\n', '? - - ', '{a: [&x ]}']) {
      assert.deepEqual(parseYamlDocuments(text).errors, [], text);
      assertReadsBackSame(text);
    }
  });

  it('drops empty documents and separates documents with ---', () => {
    assert.equal(roundTrip('a: 1\n---\n---\nb: 2\n'), 'a: 1\n---\nb: 2\n');
  });
});
