import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { renderConfig, renderFull, type MachineFacts, type RenderInput, type RenderResult } from '../../src/configserve/render.ts';
import { fromStencil, scalarTextByRoundTrip, writtenAsIs } from '../../src/configserve/stencil.ts';
import { CONTROLPLANE, WORKER, WORKER_114, WORKER_SINGLE } from './configserve-fixtures.ts';

const EVENT_SINK = 'apiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: 192.0.2.1:4002\n';

/** The full render, counting how often the stencil falls back on it. */
function counted(): { full: (input: RenderInput) => RenderResult; calls: () => number } {
  let calls = 0;
  return { full: (input) => (calls++, renderFull(input)), calls: () => calls };
}

// Each test's inputs get their own patch text, so shapes cached by an earlier test are not reused.
let unique = 0;
const input = (base: string, machine: MachineFacts): RenderInput => ({
  base,
  patches: [`machine:\n  env:\n    TEST_CASE: "${++unique}"\n`],
  extraDocuments: [EVENT_SINK],
  machine,
});

describe('configserve stencil', () => {
  it('renders a thousand machines of one shape with one full render, each byte for byte what the full render gives', () => {
    const c = counted();
    const shape = input(CONTROLPLANE, { hostname: '', installDisk: '/dev/nvme0n1', labels: { rack: '', 'topology.kubernetes.io/zone': '' } });
    for (let i = 0; i < 1000; i++) {
      const m = { ...shape, machine: { hostname: `cp-${i}`, installDisk: '/dev/nvme0n1', labels: { rack: `r${i % 7}`, 'topology.kubernetes.io/zone': `z${i % 3}` } } };
      const fast = fromStencil(m, c.full);
      assert.ok(fast?.ok, `machine ${i} comes from the stencil`);
      if (i % 97 === 0) assert.deepEqual(fast, renderFull(m));
    }
    assert.equal(c.calls(), 1);
  });

  it('writes values that YAML would read as another type quoted, exactly as the full render does', () => {
    const c = counted();
    const base = input(WORKER, { hostname: 'x', labels: { a: 'x' } });
    const cases = [['123', '"123"'], ['0755', '"0755"'], ['1e3', '"1e3"'], ['on', '"on"'], ['null', '"null"'], ['true', '"true"'], ['', '""'], ['node.example', 'node.example']] as const;
    for (const [value, spelled] of cases) {
      const m = { ...base, machine: { hostname: value === '' ? 'h' : value, labels: { a: value } } };
      const fast = fromStencil(m, c.full);
      assert.deepEqual(fast, renderFull(m), value);
      assert.ok(fast?.ok);
      assert.ok(fast.yaml.includes(`\n        a: ${spelled}\n`), `label value ${value} written ${spelled}`);
      if (value !== '') assert.ok(fast.yaml.includes(`\nhostname: ${spelled}\n`), `hostname ${value} written ${spelled}`);
    }
    assert.equal(c.calls(), 1);
  });

  it('agrees with the full render for any hostname and labels (property)', () => {
    const label = fc.stringMatching(/^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?)?$/);
    const hostname = fc.oneof(fc.stringMatching(/^[a-z0-9](?:[-a-z0-9.]{0,12}[a-z0-9])?$/), fc.constantFrom('on', 'off', 'null', '1.5', '0o17', '-', 'a..b', 'UPPER', 'x'.repeat(64)), fc.string({ maxLength: 8 }));
    const labels = fc.dictionary(fc.constantFrom('rack', 'zone', 'example.com/role', 'bad key', ''), fc.oneof(label, fc.string({ maxLength: 6 })), { maxKeys: 3 });
    const bases = [WORKER, WORKER_SINGLE, CONTROLPLANE, WORKER_114];
    let stencilled = 0;
    fc.assert(
      fc.property(fc.nat(bases.length - 1), fc.option(hostname, { nil: undefined }), fc.option(labels, { nil: undefined }), (b, name, l) => {
        const m: RenderInput = {
          base: bases[b]!,
          patches: [],
          extraDocuments: [EVENT_SINK],
          machine: { ...(name === undefined ? {} : { hostname: name }), installDisk: '/dev/sdb', ...(l === undefined ? {} : { labels: l }) },
        };
        const fast = fromStencil(m, renderFull);
        if (fast !== undefined) stencilled++;
        assert.deepEqual(fast ?? renderConfig(m), renderFull(m));
      }),
      { numRuns: 400, seed: 20261122 },
    );
    assert.ok(stencilled > 100, `${stencilled} of 400 came from a stencil`);
  });

  it('a value taken without the round trip is spelled exactly as the round trip spells it (tricky values)', () => {
    // [value, taken without the round trip]
    const cases: [string, boolean][] = [
      ['true', false], ['True', false], ['TRUE', false], ['tRUE', false], ['false', false], ['NO', false], ['No', false],
      ['yes', false], ['On', false], ['OFF', false], ['y', false], ['Y', false], ['n', false], ['N', false],
      ['null', false], ['Null', false], ['~', false], ['', false], ['1e3', false], ['0x1f', false], ['0o17', false],
      ['0755', false], ['123', false], ['1.5', false], ['.inf', false], ['-.inf', false], ['.nan', false], ['-a', false],
      ['-', false], ['a:b', false], ['a: b', false], ['a #b', false], ['a b', false], ["o'neil", false], ['a-', false],
      ['a.', false], ['a_', false], ['---', false], ['...', false], ['1node', false], ['a\nb', false],
      ['storm-12', true], ['node.example.com', true], ['a', true], ['e', true], ['E1', true], ['inf', true],
      ['nan', true], ['yess', true], ['nope', true], ['onion', true], ['a--b', true], ['a...b', true], ['a_b', true],
      ['x'.repeat(300), true],
    ];
    for (const [value, fast] of cases) {
      assert.equal(writtenAsIs(value), fast, JSON.stringify(value));
      if (fast) assert.equal(scalarTextByRoundTrip(value), value, JSON.stringify(value));
    }
  });

  it('a value taken without the round trip is spelled exactly as the round trip spells it (property)', () => {
    const words = ['true', 'false', 'null', 'yes', 'no', 'on', 'off', 'y', 'n', 'inf', 'nan', 'e'];
    const char = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-');
    const piece = fc.oneof(char, char, fc.mixedCase(fc.constantFrom(...words)));
    const value = fc.oneof(fc.array(piece, { minLength: 1, maxLength: 12 }).map((p) => p.join('')), fc.string({ unit: char, maxLength: 80 }));
    let taken = 0;
    fc.assert(
      fc.property(value, (v) => {
        if (!writtenAsIs(v)) return;
        taken++;
        assert.equal(scalarTextByRoundTrip(v), v);
      }),
      { numRuns: 5000, seed: 20261123 },
    );
    assert.ok(taken > 1000, `${taken} of 5000 taken without the round trip`);
  });

  it('a value the config must not carry takes the full render, which says why', () => {
    const c = counted();
    const m = input(WORKER, { hostname: 'good', labels: { rack: 'r1' } });
    assert.ok(fromStencil(m, c.full)?.ok);
    for (const machine of [{ hostname: 'bad_name', labels: { rack: 'r1' } }, { hostname: 'good', labels: { rack: 'r1\nmachine: {}' } }]) {
      assert.equal(fromStencil({ ...m, machine }, c.full), undefined);
      const r = renderConfig({ ...m, machine });
      assert.ok(!r.ok);
      assert.match(r.errors.join('\n'), /hostname|label|nodeLabels/);
    }
  });

  it('an empty flow map the machine writes into becomes a block, so a v1alpha1-only config is stencilled too', () => {
    const c = counted();
    const base = WORKER_SINGLE.replace(/^ {4}network:\n(?: {8}.*\n)*/m, '    network: {}\n');
    assert.match(base, /network: \{\}/);
    const m = input(base, { hostname: 'w-1' });
    const fast = fromStencil(m, c.full);
    assert.ok(fast?.ok);
    assert.match(fast.yaml, /\n {4}network:\n {8}hostname: w-1\n/);
    assert.deepEqual(fromStencil({ ...m, machine: { hostname: 'w-2' } }, c.full), renderFull({ ...m, machine: { hostname: 'w-2' } }));
    assert.equal(c.calls(), 1);
  });

  it('a slot in a flow map is not stencilled: every machine takes the full render, and gets the same config', () => {
    const c = counted();
    const base = WORKER.replace(/apiVersion: v1alpha1\nkind: HostnameConfig\n[^-]*/, '{apiVersion: v1alpha1, kind: HostnameConfig, auto: stable}\n');
    assert.match(base, /\{apiVersion: v1alpha1, kind: HostnameConfig/);
    const m = input(base, { hostname: 'w-1' });
    assert.equal(fromStencil(m, c.full), undefined);
    assert.equal(fromStencil({ ...m, machine: { hostname: 'w-2' } }, c.full), undefined);
    assert.equal(c.calls(), 1, 'the shape is judged once');
    const r = renderConfig(m);
    assert.ok(r.ok);
    assert.match(r.yaml, /hostname: w-1/);
  });

  it('a profile that does not render is not stencilled, and every machine gets its errors', () => {
    const m = input(WORKER, { hostname: 'w-1' });
    const broken = { ...m, patches: ['machine: [not, a, map]\n'] };
    assert.equal(fromStencil(broken, renderFull), undefined);
    const r = renderConfig(broken);
    assert.ok(!r.ok);
  });
});
