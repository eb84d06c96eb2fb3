import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { loadCatalog } from '../../src/boot/profiles.ts';
import { ConfigDelivery, type DeliveryDeps } from '../../src/configserve/delivery.ts';
import { BootTokens } from '../../src/configserve/tokens.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { DurableCommits } from '../../src/inventory/durable.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { Timeline } from '../../src/inventory/timeline.ts';
import { WriteBehind } from '../../src/inventory/writebehind.ts';
import { arpTableMac } from '../../src/ipxe/neighbour.ts';
import { counter, createRegistry } from '../../src/metrics.ts';
import { REPO, tempDir } from '../helpers/heph.ts';

const ARP = `IP address       HW type     Flags       HW address            Mask     Device
192.0.2.21       0x1         0x2         52:54:00:00:00:21     *        eth1
192.0.2.22       0x1         0x0         00:00:00:00:00:00     *        eth1
192.0.2.23       0x1         0x2         52:54:00:00:00:99     *        eth1
`;

test('neighbour table: complete entries only', () => {
  assert.equal(arpTableMac('192.0.2.21', ARP), '52:54:00:00:00:21');
  assert.equal(arpTableMac('192.0.2.22', ARP), undefined, 'incomplete entry');
  assert.equal(arpTableMac('192.0.2.2', ARP), undefined, 'a prefix of another address is not a match');
  assert.equal(arpTableMac('192.0.2.21', ''), undefined);
  // The same address on two interfaces, the complete entry last and without a final newline.
  const twice = `${ARP}192.0.2.22       0x1         0x2         52:54:00:00:00:22     *        eth2`;
  assert.equal(arpTableMac('192.0.2.22', twice), '52:54:00:00:00:22');
  assert.equal(arpTableMac('IP', ARP), undefined, 'the header is not an entry');
});

/** A ConfigDelivery over a fresh inventory with the test profiles; `deps` adds or replaces what a test needs. */
function setup(deps: Partial<DeliveryDeps> = {}) {
  const d = tempDir();
  const { db } = openInventory(d.path);
  const durable = new DurableCommits(db);
  const machines = new Machines(db);
  const timeline = new Timeline(db, new WriteBehind(db));
  const tokens = new BootTokens(db);
  const catalog = loadCatalog(`${REPO}test/fixtures/profiles`, undefined);
  const delivery = new ConfigDelivery({
    db,
    durable,
    machines,
    tokens,
    catalog: () => catalog,
    timeline,
    log: pino({ level: 'silent' }),
    served: counter(createRegistry(), 'heph_configs_total', 'x', ['result']),
    ...deps,
  });
  return {
    db,
    machines,
    timeline,
    tokens,
    delivery,
    async done() {
      await durable.close();
      db.close();
      d.remove();
    },
  };
}

test('a token used from the right IP but by another NIC is refused and raises an alert', async () => {
  const { machines, timeline, tokens, delivery, done } = setup({ neighbour: (ip) => arpTableMac(ip, ARP) });
  try {
    const m = machines.resolve({ mac: '52:54:00:00:00:21', ip: '192.0.2.21' }).machine;
    machines.update(m.id, { acceptance: 'accepted' });
    const good = tokens.mint({ machineId: m.id, ip: '192.0.2.21', profile: 'worker', wipe: false, ttlMs: 3 * 3600_000 });
    assert.equal((await delivery.deliver(good.token, '192.0.2.21')).status, 200);
    const stolen = tokens.mint({ machineId: m.id, ip: '192.0.2.23', profile: 'worker', wipe: false, ttlMs: 3 * 3600_000 });
    const r = await delivery.deliver(stolen.token, '192.0.2.23');
    assert.deepEqual(r, { status: 403, reason: 'wrong-mac' });
    assert.ok(timeline.list(m.id).some((e) => e.kind === 'alert.token-mac'));
  } finally {
    await done();
  }
});

