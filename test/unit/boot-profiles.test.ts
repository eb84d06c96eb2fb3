import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CatalogCache, loadCatalog, parseProfile, parseSelector } from '../../src/boot/profiles.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { REPO, tempDir } from '../helpers/heph.ts';

test('the fixture directory loads: profiles with files read, selectors sorted, the broken one still listed', () => {
  const c = loadCatalog(join(REPO, 'test/fixtures/profiles'), undefined);
  assert.deepEqual(c.errors, []);
  assert.deepEqual([...c.profiles.keys()].sort(), ['broken', 'worker']);
  const w = c.profiles.get('worker')!;
  assert.match(w.base, /^version: v1alpha1/);
  assert.equal(w.patches.length, 2);
  assert.match(w.patches[0]!, /192\.0\.2\.123/);
  assert.match(w.patches[1]!, /vm\.nr_hugepages/);
  assert.deepEqual(w.install, { disk: '/dev/vda' });
  assert.ok(w.kernelArgs.includes('talos.platform=metal'));
  assert.deepEqual(c.selectors.map((s) => [s.name, s.autoAccept]), [['auto-rack', true], ['everything', false]]);
});

const base = { kind: 'Profile', name: 'p', talosVersion: 'v1.13.9', baseInline: 'version: v1alpha1\n' };
const refused: [string, Record<string, unknown>, RegExp][] = [
  ['bad name', { ...base, name: 'P_1' }, /name/],
  ['bad version', { ...base, talosVersion: '1.13' }, /talosVersion/],
  ['unknown key', { ...base, kernalArgs: [] }, /unknown key "kernalArgs"/],
  ['unsafe kernel arg', { ...base, kernelArgs: ['talos.platform=metal', 'slab_nomerge', 'pti=on', 'x\nchain http://evil'] }, /kernelArgs/],
  ['iPXE variable in a kernel arg', { ...base, kernelArgs: ['talos.platform=metal', 'slab_nomerge', 'pti=on', 'a=${net0/ip}'] }, /kernelArgs/],
  ['talos.config set by hand', { ...base, kernelArgs: ['talos.platform=metal', 'slab_nomerge', 'pti=on', 'talos.config=http://x/'] }, /kernelArgs/],
  ['missing pti=on', { ...base, kernelArgs: ['talos.platform=metal', 'slab_nomerge'] }, /pti=on/],
  ['missing slab_nomerge', { ...base, kernelArgs: ['talos.platform=metal', 'pti=on'] }, /slab_nomerge/],
  ['both base and baseInline', { ...base, base: 'x.yaml' }, /exactly one/],
  ['bad disk', { ...base, install: { disk: 'sda; rm' } }, /install\.disk/],
  ['file outside the directory', { ...base, baseInline: undefined, base: '../../etc/passwd' }, /inside profiles\.dir/],
  ['absolute file', { ...base, baseInline: undefined, base: '/etc/passwd' }, /inside profiles\.dir/],
];
for (const [name, raw, msg] of refused) {
  test(`profile refused: ${name}`, () => {
    const clean = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
    assert.throws(() => parseProfile(clean, 'test', '/nonexistent-dir'), msg);
  });
}

test('selectors: values normalised, bad ones refused', () => {
  const s = parseSelector({ name: 's', profile: 'p', match: { mac: '52-54-00-00-00-01', uuid: ['8A0F1C2E-1111-4222-8333-944455556666'], labels: { rack: 1 } } }, 't');
  assert.deepEqual(s.match, { mac: ['52:54:00:00:00:01'], uuid: ['8a0f1c2e-1111-4222-8333-944455556666'], labels: { rack: '1' } });
  assert.throws(() => parseSelector({ name: 's', profile: 'p', match: { mac: 'nope' } }, 't'), /match\.mac/);
  assert.throws(() => parseSelector({ name: 's', profile: 'p', match: { color: 'red' } }, 't'), /unknown key "color"/);
  assert.throws(() => parseSelector({ name: 's', profile: 'p', autoAccept: 'yes' }, 't'), /autoAccept/);
});

test('a directory with mistakes keeps what is valid and says what is not', () => {
  const d = tempDir();
  try {
    mkdirSync(join(d.path, 'configs'));
    writeFileSync(join(d.path, 'a.yaml'), 'kind: Profile\nname: good\ntalosVersion: v1.13.9\nbaseInline: "version: v1alpha1"\n---\nkind: Selector\nname: orphan\nprofile: missing\n---\nkind: Thing\n');
    writeFileSync(join(d.path, 'b.yaml'), 'kind: Profile\nname: good\ntalosVersion: v1.13.9\nbase: configs/none.yaml\n');
    writeFileSync(join(d.path, 'c.yml'), 'key: [unclosed\n');
    const c = loadCatalog(d.path, undefined);
    assert.deepEqual([...c.profiles.keys()], ['good']);
    assert.equal(c.errors.length, 4, c.errors.join('\n'));
    assert.ok(c.errors.some((e) => /kind must be Profile or Selector/.test(e)));
    assert.ok(c.errors.some((e) => /b\.yaml#1: .*cannot read configs\/none\.yaml: ENOENT/.test(e)));
    assert.ok(c.errors.some((e) => /c\.yml#1: not valid YAML/.test(e)));
    assert.ok(c.errors.some((e) => /orphan names profile missing/.test(e)));
  } finally {
    d.remove();
  }
});

test('the catalog cache reloads only after its age', () => {
  let loads = 0;
  const cache = new CatalogCache(() => (loads++, { profiles: new Map(), selectors: [], errors: [] }), 1000);
  cache.get(0);
  cache.get(999);
  assert.equal(loads, 1);
  cache.get(1001);
  assert.equal(loads, 2);
});

test('profiles and selectors stored in the inventory load next to the directory ones; clashes are reported', () => {
  const d = tempDir();
  const { db } = openInventory(d.path);
  try {
    const now = Date.now();
    db.prepare('INSERT INTO profiles (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)').run('db-worker', JSON.stringify({ talosVersion: 'v1.13.9', base: 'configs/worker.yaml', install: { disk: '/dev/nvme0n1' } }), now, now);
    db.prepare('INSERT INTO profiles (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)').run('worker', JSON.stringify({ talosVersion: 'v1.13.9', baseInline: 'version: v1alpha1' }), now, now);
    db.prepare('INSERT INTO selectors (name, profile, match, auto_accept, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run('by-serial', 'db-worker', JSON.stringify({ serial: 'S1' }), 1, now, now);
    const c = loadCatalog(join(REPO, 'test/fixtures/profiles'), db);
    assert.equal(c.profiles.get('db-worker')!.install.disk, '/dev/nvme0n1');
    assert.match(c.profiles.get('db-worker')!.base, /^version: v1alpha1/);
    assert.equal(c.profiles.get('worker')!.source, 'lab.yaml#1', 'the first definition stays');
    assert.ok(c.errors.some((e) => /profile worker is defined twice \(lab\.yaml#1 and inventory profile worker\)/.test(e)));
    assert.deepEqual(c.selectors.find((s) => s.name === 'by-serial'), { name: 'by-serial', profile: 'db-worker', match: { serial: ['S1'] }, autoAccept: true, source: 'inventory selector by-serial' });
  } finally {
    db.close();
    d.remove();
  }
});
