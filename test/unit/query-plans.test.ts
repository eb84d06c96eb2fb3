// Every statement a boot runs must find its rows through an index. A full scan or a sort is invisible with ten
// machines and a storm's bottleneck with thousands: the token purge once scanned every token on every mint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { AssetStore } from '../../src/assets/store.ts';
import { loadCatalog } from '../../src/boot/profiles.ts';
import { ConfigDelivery } from '../../src/configserve/delivery.ts';
import { BootTokens } from '../../src/configserve/tokens.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { DurableCommits } from '../../src/inventory/durable.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { Timeline } from '../../src/inventory/timeline.ts';
import { WriteBehind } from '../../src/inventory/writebehind.ts';
import { counter, createRegistry } from '../../src/metrics.ts';
import { REPO, tempDir } from '../helpers/heph.ts';

test('the statements of a boot use indexes: no table scan, no sort', async () => {
  const d = tempDir();
  const { db } = openInventory(d.path);
  // Every statement prepared from here on, whoever prepares it.
  const prepared = new Set<string>();
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => (prepared.add(sql), prepare(sql))) as typeof db.prepare;
  const durable = new DurableCommits(db);
  try {
    const machines = new Machines(db);
    const writer = new WriteBehind(db);
    const timeline = new Timeline(db, writer);
    const tokens = new BootTokens(db);
    const id = 'ab'.repeat(64);
    db.prepare('INSERT INTO assets (id, name, version, arch, kind, size, path, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(id, 'vmlinuz-amd64', 'v1.13.9', 'amd64', 'kernel', 1, `assets/${id}`, 0);
    const assets = new AssetStore(db, d.path);
    const delivery = new ConfigDelivery({
      db,
      durable,
      machines,
      tokens,
      catalog: () => loadCatalog(`${REPO}test/fixtures/profiles`, undefined),
      timeline,
      log: pino({ level: 'silent' }),
      served: counter(createRegistry(), 'heph_configs_total', 'x', ['result']),
    });

    // What one machine's boot does to the inventory, in order: sighted by DHCP, accepted, given a script with a
    // token (which purges expired ones), its kernel looked up by URL, its config fetched, its timeline written.
    const ip = '192.0.2.21';
    const m = machines.resolve({ mac: '52:54:00:00:00:21', uuid: '8a0f1c2e-1111-4222-8333-944455556666', arch: 'x86_64', ip }).machine;
    machines.resolve({ mac: '52:54:00:00:00:21', ip, hostname: 'node-1' });
    machines.update(m.id, { acceptance: 'accepted' });
    machines.setState(m.id, 'installing', null);
    assert.equal(machines.findByIp(ip)?.id, m.id);
    assert.equal(machines.idByIp(ip), m.id);
    const t = tokens.mint({ machineId: m.id, ip, profile: 'worker', wipe: false, ttlMs: 3_600_000 });
    assert.equal(assets.byUrl(id.slice(0, 64), 'vmlinuz-amd64')?.id, id);
    assert.equal(assets.byUrl(id.slice(0, 64), 'initramfs-amd64.xz'), undefined, 'the name must match too');
    assert.equal(assets.byUrl('ac'.repeat(32), 'vmlinuz-amd64'), undefined, 'another prefix');
    assert.equal(assets.find('v1.13.9', 'amd64', 'vmlinuz-amd64')?.id, id);
    assert.equal((await delivery.deliver(t.token, ip)).status, 200);
    timeline.append({ machineId: m.id, kind: 'ipxe.script', source: 'http', message: 'x' });
    writer.flush();

    const bad: string[] = [];
    for (const sql of prepared) {
      if (!/^\s*(SELECT|UPDATE|DELETE|INSERT|WITH)\b/i.test(sql)) continue;
      // Any value will do for the plan: each parameter gets a string.
      const positional = (sql.match(/\?/g) ?? []).length;
      const named = Object.fromEntries([...sql.matchAll(/@(\w+)/g)].map((p) => [p[1]!, 'x']));
      const args: unknown[] = Array(positional).fill('x');
      if (Object.keys(named).length > 0) args.push(named);
      const plan = (prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail);
      // Reading a subquery's few rows back is not a scan of a table.
      const slow = plan.filter((p) => (/^SCAN /.test(p) && !/USING (COVERING )?INDEX|CONSTANT ROW|^SCAN \(subquery/.test(p)) || /TEMP B-TREE/.test(p));
      if (slow.length > 0) bad.push(`${sql.replace(/\s+/g, ' ')}: ${slow.join('; ')}`);
    }
    assert.ok(prepared.size >= 15, `the flow prepared ${prepared.size} statements`);
    assert.deepEqual(bad, []);
  } finally {
    await durable.close();
    db.close();
    d.remove();
  }
});
