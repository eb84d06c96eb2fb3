// Fuzz the config patcher: random strategic-merge patches, RFC 6902 operation lists and raw YAML text (anchors,
// aliases, tags, several documents) applied to a realistic worker config through renderConfig. Bar: renderConfig
// never throws and never reports an "internal error" (its catch-all for bugs); a rendered config is valid YAML whose
// sha256 is the one reported.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { it } from 'node:test';
import fc from 'fast-check';
import { parseAllDocuments, stringify } from 'yaml';
import { renderConfig } from '../../src/configserve/render.ts';
import { REPO } from '../helpers/heph.ts';
import { WORKER } from './configserve-fixtures.ts';
import { params } from './fuzz-budget.ts';

const KEYS = ['version', 'machine', 'cluster', 'install', 'disk', 'network', 'interfaces', 'interface', 'deviceSelector', 'addresses', 'routes', 'sysctls', 'kubelet', 'extraArgs', 'certSANs', 'files', 'kind', 'name', 'apiVersion', '$patch', 'op', 'path', 'value', 'from', 'a', '0', '-', ''];
const key = fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 }));
const leaf = fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constantFrom('delete', 'replace', 'v1alpha1', '/dev/sda', 'HostnameConfig', null, true, 0, -1, 1e300));
const tree: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(key, tie('node'), { maxKeys: 5 })),
})).node;

const pointer = fc.array(fc.oneof(fc.constantFrom('machine', 'cluster', 'install', 'disk', 'network', 'interfaces', '0', '1', '-', '~0', '~1', '~2', 'sysctls', 'a~1b'), fc.string({ maxLength: 4 })), { maxLength: 5 }).map((p) => (p.length ? `/${p.join('/')}` : ''));
const op = fc.record(
  { op: fc.oneof(fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test'), fc.string({ maxLength: 5 })), path: fc.oneof(pointer, fc.string({ maxLength: 8 })), from: pointer, value: tree },
  { requiredKeys: ['op'] },
);

const yamlText = fc
  .array(fc.constantFrom('a: &x {b: 1}\n', 'c: *x\n', '<<: *x\n', 'd: !!binary aGk=\n', '&a [*a]\n', '---\n', '...\n', 'machine:\n', '  install:\n', '    disk: /dev/vda\n', '- op: add\n', '  path: /machine/x\n', '  value: 1\n', '$patch: delete\n', 'kind: HostnameConfig\n', '? [a]\n: b\n', '%YAML 1.2\n', '!!str 1\n', 'e: "\\u0000"\n', '\t\n', '{', ']', '&b [1, 2]\n', 'f: !custom x\n'), { maxLength: 12 })
  .map((parts) => parts.join(''));

const patch = fc.oneof(
  tree.map((t) => stringify(t)),
  fc.array(op, { minLength: 1, maxLength: 5 }).map((ops) => stringify(ops)),
  fc.array(tree, { minLength: 1, maxLength: 3 }).map((docs) => docs.map((d) => stringify(d)).join('---\n')),
  yamlText,
  fc.string({ maxLength: 120 }),
);

function check(patches: string[]): void {
  const r = renderConfig({ base: WORKER, patches, machine: { hostname: 'fuzz-1', installDisk: '/dev/vda' } });
  if (!r.ok) {
    assert.ok(r.errors.length > 0);
    for (const e of r.errors) assert.doesNotMatch(e, /internal error/, `a bug surfaced as: ${e}`);
    return;
  }
  assert.equal(r.sha256, createHash('sha256').update(r.yaml).digest('hex'));
  const docs = parseAllDocuments(r.yaml);
  assert.ok(Array.isArray(docs));
  for (const d of docs) assert.deepEqual('errors' in d ? d.errors : [], []);
}

it('fuzz: renderConfig with random patches never throws and never hits its internal-error path', () => {
  fc.assert(fc.property(fc.array(patch, { minLength: 1, maxLength: 3 }), check), params(41, 600));
});

it('fuzz: random base configs are refused with reasons, never an exception', () => {
  fc.assert(
    fc.property(fc.oneof(yamlText, tree.map((t) => stringify(t)), fc.string({ maxLength: 200 })), (base) => {
      const r = renderConfig({ base, patches: [] });
      if (!r.ok) for (const e of r.errors) assert.doesNotMatch(e, /internal error/, `a bug surfaced as: ${e}`);
    }),
    params(42, 1_500),
  );
});

// Crashers this fuzz found (seeds 41 and 42) in src/configserve as of patch 4a3642c (fixed on main by 6d8dff0): both came out
// of renderConfig's internal-error path, and the first held the CPU for about a minute before the stack overflowed.
const refusedCleanly = (r: ReturnType<typeof renderConfig>): void => {
  assert.equal(r.ok, false);
  if (!r.ok) for (const e of r.errors) assert.doesNotMatch(e, /internal error/);
};

it('regression (fuzz seed 41): a patch that is a self-referencing alias (&a [*a]) is refused quickly, without recursion', () => {
  // In a child process with a deadline: before the fix this input held the CPU for about a minute.
  const code = `import { renderConfig } from './src/configserve/render.ts'; import { WORKER } from './test/unit/configserve-fixtures.ts';
    process.stdout.write(JSON.stringify(renderConfig({ base: WORKER, patches: ['&a [*a]\\n'] })));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, timeout: 5000, encoding: 'utf8' });
  assert.equal(r.signal, null, 'rendered within 5 s');
  refusedCleanly(JSON.parse(r.stdout) as ReturnType<typeof renderConfig>);
});

it('regression (fuzz seed 42): a base config with a !!binary scalar is refused with a reason', () => {
  refusedCleanly(renderConfig({ base: 'd: !!binary aGk=\n', patches: [] }));
});
