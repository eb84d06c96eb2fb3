import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseProfile, score, type MachineFacts, type Selector } from '../../src/boot/selectors.ts';

const machine: MachineFacts = {
  id: 'm-test',
  macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'],
  uuid: '4c4c4544-0042-3510-8051-b4c04f4a4d32',
  serial: 'ABC123',
  arch: 'x86_64',
  hostname: 'node-1',
  labels: { rack: 'r1', role: 'worker' },
  profile: null,
};
const sel = (name: string, profile: string, match: Selector['match'], autoAccept = false): Selector => ({ name, profile, match, autoAccept, source: 'test' });

const scores: [string, Selector['match'], number][] = [
  ['empty match (default selector)', {}, 0],
  ['second NIC mac', { mac: ['52:54:00:00:00:02'] }, 1],
  ['one of several macs', { mac: ['52:54:00:00:00:09', '52:54:00:00:00:01'] }, 1],
  ['wrong mac', { mac: ['52:54:00:00:00:09'] }, -1],
  ['uuid', { uuid: ['4c4c4544-0042-3510-8051-b4c04f4a4d32'] }, 1],
  ['serial', { serial: ['ABC123'] }, 1],
  ['arch amd64 = x86_64', { arch: ['amd64'] }, 1],
  ['arch arm64 ≠ x86_64', { arch: ['arm64'] }, -1],
  ['hostname', { hostname: ['node-1'] }, 1],
  ['two labels count as two keys', { labels: { rack: 'r1', role: 'worker' } }, 2],
  ['one label wrong', { labels: { rack: 'r1', role: 'cp' } }, -1],
  ['label absent on machine', { labels: { zone: 'a' } }, -1],
  ['mac + serial + label', { mac: ['52:54:00:00:00:01'], serial: ['ABC123'], labels: { rack: 'r1' } }, 3],
  ['all keys must match', { mac: ['52:54:00:00:00:01'], serial: ['nope'] }, -1],
];
for (const [name, match, want] of scores) test(`score: ${name} = ${want}`, () => assert.equal(score(match, machine), want));

test('chooseProfile: most matching keys wins', () => {
  const c = chooseProfile(machine, [sel('default', 'generic', {}), sel('rack1', 'rack', { labels: { rack: 'r1' } }), sel('exact', 'special', { mac: ['52:54:00:00:00:01'], serial: ['ABC123'] })]);
  assert.equal(c.profile, 'special');
  assert.match(c.reason, /selector exact matches 2 keys/);
});

test('chooseProfile: ties are broken by name, whatever the order', () => {
  const a = sel('b-sel', 'pb', { serial: ['ABC123'] });
  const b = sel('a-sel', 'pa', { hostname: ['node-1'] });
  for (const order of [[a, b], [b, a]]) {
    const c = chooseProfile(machine, order);
    assert.equal(c.profile, 'pa');
    assert.match(c.reason, /tied with b-sel/);
  }
});

test('chooseProfile: explicit assignment beats every selector', () => {
  const c = chooseProfile({ ...machine, profile: 'pinned' }, [sel('exact', 'special', { uuid: ['4c4c4544-0042-3510-8051-b4c04f4a4d32'] })]);
  assert.deepEqual([c.profile, 'via' in c ? c.via : undefined], ['pinned', 'assignment']);
});

test('chooseProfile: no match → no profile; auto-accept comes only from the winner', () => {
  assert.equal(chooseProfile(machine, [sel('x', 'p', { serial: ['zzz'] })]).profile, null);
  const c = chooseProfile(machine, [sel('loose', 'p1', {}, true), sel('tight', 'p2', { serial: ['ABC123'] }, false)]);
  assert.equal(c.profile, 'p2');
  assert.equal(c.autoAccept, false);
  assert.equal(chooseProfile(machine, [sel('loose', 'p1', {}, true)]).autoAccept, true);
});
