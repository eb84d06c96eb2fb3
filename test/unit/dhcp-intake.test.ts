import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Intake, type Look } from '../../src/dhcp/intake.ts';
import { outcomeCode, OutcomeWriter } from '../../src/dhcp/outcome-log.ts';
import { Sightings } from '../../src/dhcp/sightings.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { Timeline } from '../../src/inventory/timeline.ts';
import { WriteBehind } from '../../src/inventory/writebehind.ts';
import { createLogger } from '../../src/log.ts';
import { tempDir } from '../helpers/heph.ts';
import { ovmfPxe, packet } from './dhcp-fixtures.ts';

const offer = outcomeCode({ kind: 'reply', type: 'offer' });
const oversize = outcomeCode({ kind: 'malformed', reason: 'oversize' });
const short = outcomeCode({ kind: 'malformed', reason: 'short' });
const relay = outcomeCode({ kind: 'ignored', reason: 'relay-not-allowed' });
const notPxe = outcomeCode({ kind: 'ignored', reason: 'not-pxe' });

it('intake: counts every record, reserves sightings by MAC within the budget, and picks what to look at closer', () => {
  const dir = tempDir();
  const { db } = openInventory(dir.path);
  try {
    const writer = new WriteBehind(db, { tickMs: 60_000 });
    const machines = new Machines(db);
    const s = new Sightings({ writer, machines, timeline: new Timeline(db, writer), log: createLogger({ log: { level: 'silent', format: 'json' } }) }, { perSecond: 0.001, burst: 2 });
    const warned: string[] = [];
    const intake = new Intake(s, (key) => {
      warned.push(key);
      return key !== 'malformed:short';
    });
    const w = new OutcomeWriter();
    // MACs that differ only in their first bytes or only in their last: each its own machine.
    const macs = [[0x52, 0, 0, 0, 0, 1], [0x54, 0, 0, 0, 0, 1], [0x52, 0, 0, 0, 1, 0], [0x52, 0, 0, 0, 0, 1]];
    for (const mac of macs) w.add(0, 'dhcp', offer, true, 0, 68, packet(ovmfPxe(), { chaddr: mac }));
    w.add(1, 'proxy', notPxe, false, 0, 4011, Buffer.alloc(300));
    w.add(0, 'dhcp', oversize, false, 0x0a000001, 68, Buffer.alloc(300));
    w.add(0, 'dhcp', short, false, 0, 68, Buffer.alloc(10));
    w.add(0, 'dhcp', relay, false, 0, 67, Buffer.alloc(300));
    const { records, length } = w.take();
    const looked: [Look, number, string][] = [];
    intake.add(records, length, false, (r, why) => looked.push([why, r.code, r.hasClient ? r.mac() : r.from().address]));
    assert.equal(intake.dhcp, 7);
    assert.equal(intake.proxy, 1);
    assert.equal(intake.counts[offer], 4);
    assert.equal(intake.counts[notPxe], 1);
    assert.equal(intake.dropped, 1, 'the budget of 2 admits two new MACs; the fourth record is the first MAC again');
    assert.deepEqual(warned, ['malformed:oversize', 'malformed:short', 'relay']);
    assert.deepEqual(looked, [
      ['closer', offer, '52:00:00:00:00:01'],
      ['closer', offer, '54:00:00:00:00:01'],
      ['closer', offer, '52:00:00:00:00:01'],
      ['oversize', oversize, '10.0.0.1'],
      ['closer', relay, '0.0.0.0'],
    ]);
    intake.reset();
    assert.equal(intake.counts[offer], 0);
    assert.equal(intake.dhcp + intake.proxy + intake.dropped, 0);
    // With debug on, every reply is looked at, admitted or not.
    const again = new OutcomeWriter();
    again.add(0, 'dhcp', offer, true, 0, 68, packet(ovmfPxe(), { chaddr: [0x52, 0, 0, 0, 9, 9] }));
    const t = again.take();
    let n = 0;
    intake.add(t.records, t.length, true, () => n++);
    assert.equal(n, 1);
    assert.equal(intake.dropped, 1);
    // The reserved ones are written as the MACs they are.
    for (const mac of macs) s.record({ messageType: 1, mac: mac.map((b) => b.toString(16).padStart(2, '0')).join(':'), archCodes: [7], arch: { code: 7, name: 'x64 UEFI', family: 'x86_64', http: false }, firmware: 'pxe', vendorClass: 'PXEClient' }, 'dhcp.discover', 'x');
    writer.flush();
    assert.deepEqual(machines.list().flatMap((m) => m.macs).sort(), ['52:00:00:00:00:01', '54:00:00:00:00:01']);
  } finally {
    db.close();
    dir.remove();
  }
});
