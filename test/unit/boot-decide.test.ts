import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideBoot, type BootMachine, type BootPolicy, type BootProfile } from '../../src/boot/decide.ts';

const NOW = 1_800_000_000_000;
const m = (over: Partial<BootMachine> = {}): BootMachine => ({ acceptance: 'accepted', state: 'discovered', reprovision: false, ...over });
const p = (over: Partial<BootProfile> = {}): BootProfile => ({ name: 'worker', autoAccept: false, ...over });
const hold: BootPolicy = { unknownMachines: 'hold' };

const table: [string, BootMachine, BootProfile | null, BootPolicy, string, boolean?][] = [
  ['unknown machine, default policy', m({ acceptance: 'pending' }), p(), hold, 'hold'],
  ['unknown machine, no profile', m({ acceptance: 'pending' }), null, hold, 'hold'],
  ['unknown machine, ignore policy', m({ acceptance: 'pending' }), p(), { unknownMachines: 'ignore' }, 'local'],
  ['unknown machine, discover-only', m({ acceptance: 'pending' }), p(), { unknownMachines: 'discover-only' }, 'maintenance'],
  ['unknown machine, discover-only, assets missing', m({ acceptance: 'pending' }), p({ assetsProblem: 'x' }), { unknownMachines: 'discover-only' }, 'hold'],
  ['unknown machine, discover-only, no profile', m({ acceptance: 'pending' }), null, { unknownMachines: 'discover-only' }, 'hold'],
  ['unknown machine, selector auto-accepts', m({ acceptance: 'pending' }), p({ autoAccept: true }), hold, 'install'],
  ['rejected machine', m({ acceptance: 'rejected' }), p({ autoAccept: true }), hold, 'local'],
  ['accepted, discovered', m(), p(), hold, 'install'],
  ['accepted, booting again', m({ state: 'booting' }), p(), hold, 'install'],
  ['accepted, config served, PXE again', m({ state: 'config-served' }), p(), hold, 'install'],
  ['accepted, installing when it rebooted', m({ state: 'installing' }), p(), hold, 'install'],
  ['accepted, failed', m({ state: 'failed' }), p(), hold, 'install'],
  ['installed', m({ state: 'installed' }), p(), hold, 'local'],
  ['running', m({ state: 'running' }), p(), hold, 'local'],
  ['ready', m({ state: 'ready' }), p(), hold, 'local'],
  ['ready with reprovision', m({ state: 'ready', reprovision: true }), p(), hold, 'install', true],
  ['installed with reprovision', m({ state: 'installed', reprovision: true }), p(), hold, 'install', true],
  ['accepted, no profile', m(), null, hold, 'hold'],
  ['accepted, assets not imported', m(), p({ assetsProblem: 'not imported' }), hold, 'hold'],
  ['installed, assets missing: still local', m({ state: 'installed' }), p({ assetsProblem: 'not imported' }), hold, 'local'],
  ['reprovision, assets missing', m({ state: 'ready', reprovision: true }), p({ assetsProblem: 'bad' }), hold, 'hold'],
];

for (const [name, machine, profile, policy, action, wipe] of table) {
  test(`decideBoot: ${name} → ${action}`, () => {
    const d = decideBoot(machine, profile, policy, NOW);
    assert.equal(d.action, action, d.reason);
    assert.equal(d.wipe, wipe ?? false);
    assert.equal(d.at, NOW);
    assert.ok(d.reason.length > 0);
  });
}

test('decideBoot: auto-accept is reported so the caller can record it; only for pending machines', () => {
  assert.equal(decideBoot(m({ acceptance: 'pending' }), p({ autoAccept: true }), hold, NOW).autoAccepted, true);
  assert.equal(decideBoot(m(), p({ autoAccept: true }), hold, NOW).autoAccepted, false);
  assert.equal(decideBoot(m({ acceptance: 'pending' }), p(), hold, NOW).autoAccepted, false);
});

test('decideBoot: a pending machine never gets an install, whatever its state or flags', () => {
  for (const state of ['discovered', 'booting', 'config-served', 'installing', 'installed', 'running', 'ready', 'failed'] as const) {
    for (const policy of ['hold', 'ignore', 'discover-only'] as const) {
      const d = decideBoot(m({ acceptance: 'pending', state, reprovision: true }), p(), { unknownMachines: policy }, NOW);
      assert.notEqual(d.action, 'install', `${state}/${policy}`);
    }
  }
});
