import assert from 'node:assert/strict';
import { it } from 'node:test';
import { classify } from '../../src/dhcp/classify.ts';
import { decode } from '../../src/dhcp/codec.ts';
import { Sightings } from '../../src/dhcp/sightings.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { Timeline } from '../../src/inventory/timeline.ts';
import { WriteBehind } from '../../src/inventory/writebehind.ts';
import { createLogger } from '../../src/log.ts';
import { tempDir } from '../helpers/heph.ts';
import { ovmfBootServerRequest, ovmfPxe, packet, UUID } from './dhcp-fixtures.ts';

function client(options: number[], mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], ciaddr?: number[]) {
  const d = decode(packet(options, { chaddr: mac, ...(ciaddr ? { ciaddr } : {}) }));
  assert.ok(d.ok);
  const c = classify(d.packet);
  assert.ok(c.ok);
  return c.client;
}

it('sightings: merged per MAC until the tick, one machine with UUID, arch, vendor class, last IP and timeline events', () => {
  const dir = tempDir();
  const { db } = openInventory(dir.path);
  try {
    const writer = new WriteBehind(db, { tickMs: 60_000 });
    const machines = new Machines(db);
    const timeline = new Timeline(db, writer);
    const s = new Sightings({ writer, machines, timeline, log: createLogger({ log: { level: 'silent', format: 'json' } }) });
    for (let i = 0; i < 5; i++) s.record(client(ovmfPxe()), 'dhcp.discover', 'DISCOVER answered');
    s.record(client(ovmfBootServerRequest(), undefined, [10, 0, 0, 50]), 'dhcp.request', 'REQUEST answered', { ip: '10.0.0.50' });
    assert.equal(writer.pending, 1, 'one write for six packets of one machine');
    writer.flush();
    writer.flush();
    const [m] = machines.list();
    assert.equal(machines.list().length, 1);
    assert.equal(m!.uuid, UUID);
    assert.deepEqual(m!.macs, ['52:54:00:12:34:56']);
    assert.equal(m!.arch, 'x64 UEFI');
    assert.equal(m!.vendorClass, 'PXEClient:Arch:00007:UNDI:003000');
    assert.equal(m!.lastIp, '10.0.0.50');
    assert.deepEqual(timeline.list(m!.id).map((e) => [e.kind, e.source]), [['dhcp.discover', 'dhcp'], ['dhcp.request', 'dhcp']]);
  } finally {
    db.close();
    dir.remove();
  }
});

it('sightings: new machines beyond the budget are dropped and counted, known ones still merge', () => {
  const dir = tempDir();
  const { db } = openInventory(dir.path);
  try {
    const writer = new WriteBehind(db, { tickMs: 60_000 });
    const s = new Sightings({ writer, machines: new Machines(db), timeline: new Timeline(db, writer), log: createLogger({ log: { level: 'silent', format: 'json' } }) }, { perSecond: 0.001, burst: 3 });
    const results = Array.from({ length: 10 }, (_, i) => s.record(client(ovmfPxe(), [0x52, 0x54, 0, 0, 0, i]), 'dhcp.discover', 'x'));
    assert.deepEqual(results, [true, true, true, false, false, false, false, false, false, false]);
    assert.equal(s.dropped, 7);
    assert.equal(s.record(client(ovmfPxe(), [0x52, 0x54, 0, 0, 0, 1]), 'dhcp.discover', 'again'), true, 'a pending machine merges for free');
    writer.flush();
    // All ten share the fixture's UUID, so the three recorded NICs land on one machine.
    assert.equal(new Machines(db).list()[0]!.macs.length, 3);
  } finally {
    db.close();
    dir.remove();
  }
});
