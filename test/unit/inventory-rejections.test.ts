import assert from 'node:assert/strict';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { openInventory } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { tempDir } from '../helpers/heph.ts';

const U1 = '7e57b001-0000-4000-8000-000000000001';
const U2 = '7e57b001-0000-4000-8000-000000000002';

function withMachines(f: (m: Machines, db: ReturnType<typeof openInventory>) => void): void {
  const dir = tempDir();
  const inv = openInventory(dir.path);
  try {
    f(new Machines(inv.db), inv);
  } finally {
    inv.db.close();
    dir.remove();
  }
}

it('rejected identities follow every writer of acceptance, NICs and UUIDs, and each change is announced', () => {
  withMachines((m) => {
    let calls = 0;
    const stop = m.onRejectionsChange(() => calls++);
    const a = m.resolve({ mac: '52:54:00:00:00:01' }).machine;
    const b = m.resolve({ mac: '52:54:00:00:00:02', uuid: U2 }).machine;
    assert.equal(calls, 0, 'sightings of machines nobody rejected say nothing');
    assert.deepEqual(m.rejectedIdentities(), { uuids: [], nics: [] });

    m.update(a.id, { acceptance: 'rejected' });
    assert.equal(calls, 1);
    assert.deepEqual(m.rejectedIdentities(), { uuids: [], nics: [['52:54:00:00:00:01', null]] });

    // The rejected machine tells its UUID and shows a second NIC.
    m.resolve({ mac: '52:54:00:00:00:01', uuid: U1 });
    m.resolve({ mac: '52:54:00:00:00:03', uuid: U1 });
    assert.equal(calls, 3);
    const ids = m.rejectedIdentities();
    assert.deepEqual(ids.uuids, [U1]);
    assert.deepEqual(ids.nics.sort(), [['52:54:00:00:00:01', U1], ['52:54:00:00:00:03', U1]]);

    // Its first NIC moves to the other (accepted) box.
    m.resolve({ mac: '52:54:00:00:00:01', uuid: U2 });
    assert.equal(calls, 4, 'a NIC leaving a rejected machine is a change');
    assert.deepEqual(m.rejectedIdentities().nics, [['52:54:00:00:00:03', U1]]);

    m.update(b.id, { hostname: 'b' });
    m.update(b.id, { acceptance: 'accepted' });
    m.update(b.id, { acceptance: 'pending' });
    m.delete(m.resolve({ mac: '52:54:00:00:00:09' }).machine.id);
    assert.equal(calls, 4, 'other updates, acceptance changes that do not involve rejected, deleting a machine not rejected: nothing');
    m.update(a.id, { acceptance: 'rejected' });
    assert.equal(calls, 4, 'rejected again: no change');
    m.update(a.id, { acceptance: 'accepted' });
    assert.equal(calls, 5);
    assert.deepEqual(m.rejectedIdentities(), { uuids: [], nics: [] });
    m.update(a.id, { acceptance: 'rejected' });
    m.delete(a.id);
    assert.equal(calls, 7);
    assert.deepEqual(m.rejectedIdentities(), { uuids: [], nics: [] });
    stop();
    m.update(b.id, { acceptance: 'rejected' });
    assert.equal(calls, 7, 'unsubscribed');
  });
});

it('dataVersion moves when another connection (the CLI) commits, not for this connection’s own writes', () => {
  withMachines((m, inv) => {
    const v0 = m.dataVersion();
    const id = m.resolve({ mac: '52:54:00:00:00:01' }).machine.id;
    assert.equal(m.dataVersion(), v0);
    const other = new Database(inv.file);
    try {
      new Machines(other).update(id, { acceptance: 'rejected' });
    } finally {
      other.close();
    }
    assert.notEqual(m.dataVersion(), v0);
    assert.deepEqual(m.rejectedIdentities().nics, [['52:54:00:00:00:01', null]]);
  });
});
