import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { StartupError } from '../../src/errors.ts';
import { MIGRATIONS_DIR, openInventory, PAGE_CACHE_KIB } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { migrate, readMigrations } from '../../src/inventory/migrate.ts';
import { Timeline } from '../../src/inventory/timeline.ts';
import { WriteBehind } from '../../src/inventory/writebehind.ts';
import { tempDir } from '../helpers/heph.ts';

const dirs: { remove(): void }[] = [];
after(() => dirs.forEach((d) => d.remove()));
function fresh(): string {
  const d = tempDir();
  dirs.push(d);
  return d.path;
}

function tables(db: Database.Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
}

describe('migrations', () => {
  it('creates the schema on a fresh database with the required pragmas and modes', () => {
    const dataDir = join(fresh(), 'data');
    const { db, file, applied } = openInventory(dataDir);
    try {
      assert.ok(applied.length >= 1);
      assert.equal(applied[0]!.name, '0001_initial.sql');
      for (const t of ['machines', 'nics', 'profiles', 'selectors', 'timeline', 'boot_tokens', 'audit', 'assets', 'api_tokens', 'schema_migrations']) {
        assert.ok(tables(db).includes(t), `table ${t}`);
      }
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('synchronous', { simple: true }), 2); // FULL
      assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
      assert.equal(db.pragma('cache_size', { simple: true }), -PAGE_CACHE_KIB); // not better-sqlite3's 16 MB
      assert.ok(Number(db.pragma('busy_timeout', { simple: true })) > 0);
      assert.equal(statSync(dataDir).mode & 0o777, 0o700);
      assert.equal(statSync(file).mode & 0o777, 0o600);
    } finally {
      db.close();
    }
  });

  it('is a no-op when run again', () => {
    const dataDir = fresh();
    openInventory(dataDir).db.close();
    const { db, applied } = openInventory(dataDir);
    try {
      assert.deepEqual(applied, []);
      assert.equal((db.prepare('SELECT count(*) AS n FROM schema_migrations').get() as { n: number }).n, readMigrations(MIGRATIONS_DIR).length);
    } finally {
      db.close();
    }
  });

  it('rolls a failing migration back whole and names it', () => {
    const dir = fresh();
    mkdirSync(join(dir, 'm'));
    writeFileSync(join(dir, 'm', '0001_one.sql'), 'CREATE TABLE a (x INTEGER);');
    writeFileSync(join(dir, 'm', '0002_two.sql'), 'CREATE TABLE b (x INTEGER);\nINSERT INTO a VALUES (1);\nINSERT INTO nope VALUES (1);');
    const db = new Database(join(dir, 'x.db'));
    try {
      assert.throws(
        () => migrate(db, readMigrations(join(dir, 'm'))),
        (err: unknown) => err instanceof StartupError && /^migration 0002_two\.sql failed and was rolled back: no such table: nope$/.test(err.message),
      );
      assert.deepEqual(tables(db).sort(), ['a', 'schema_migrations']);
      assert.equal((db.prepare('SELECT count(*) AS n FROM a').get() as { n: number }).n, 0);
      assert.deepEqual((db.prepare('SELECT name FROM schema_migrations').all() as { name: string }[]).map((r) => r.name), ['0001_one.sql']);
    } finally {
      db.close();
    }
  });

  it('refuses a landed migration that was edited', () => {
    const dir = fresh();
    mkdirSync(join(dir, 'm'));
    writeFileSync(join(dir, 'm', '0001_one.sql'), 'CREATE TABLE a (x INTEGER);');
    const db = new Database(join(dir, 'x.db'));
    try {
      migrate(db, readMigrations(join(dir, 'm')));
      writeFileSync(join(dir, 'm', '0001_one.sql'), 'CREATE TABLE a (x INTEGER, y TEXT);');
      assert.throws(() => migrate(db, readMigrations(join(dir, 'm'))), /migration 0001_one\.sql was changed after it was applied/);
    } finally {
      db.close();
    }
  });

  it('stops on a database that is not SQLite, naming the file', () => {
    const dataDir = fresh();
    writeFileSync(join(dataDir, 'heph.db'), 'this is not a database, just text that is long enough to fill a header page '.repeat(100));
    assert.throws(
      () => openInventory(dataDir),
      (err: unknown) => err instanceof StartupError && err.message.startsWith(`database ${join(dataDir, 'heph.db')}: `) && /not a database/.test(err.message) && /backup/.test(err.hint ?? ''),
    );
  });

  it('stops on a database another process holds locked', () => {
    const dataDir = fresh();
    openInventory(dataDir).db.close();
    const holder = new Database(join(dataDir, 'heph.db'));
    holder.pragma('locking_mode = EXCLUSIVE');
    holder.exec('BEGIN EXCLUSIVE');
    try {
      assert.throws(
        () => openInventory(dataDir),
        (err: unknown) => err instanceof StartupError && /database .*heph\.db: database is locked/.test(err.message) && /another heph/.test(err.hint ?? ''),
      );
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });
});

describe('machines and timeline', () => {
  it('merges sightings by UUID and MAC, and moves a NIC to the machine its UUID names', () => {
    const { db } = openInventory(fresh());
    try {
      const m = new Machines(db);
      const a = m.resolve({ mac: 'aa:bb:cc:00:00:01', arch: 'x86_64', at: 1000 });
      assert.equal(a.created, true);
      const again = m.resolve({ mac: 'aa:bb:cc:00:00:01', uuid: '7e57b001-0000-4000-8000-000000000001', ip: '192.0.2.50', at: 2000 });
      assert.equal(again.created, false);
      assert.equal(again.machine.id, a.machine.id);
      assert.equal(again.machine.uuid, '7e57b001-0000-4000-8000-000000000001');
      assert.equal(again.machine.lastIp, '192.0.2.50');
      assert.equal(again.machine.firstSeen, 1000);
      assert.equal(again.machine.lastSeen, 2000);
      const second = m.resolve({ uuid: '7e57b001-0000-4000-8000-000000000001', mac: 'aa:bb:cc:00:00:02' });
      assert.deepEqual(second.machine.macs.sort(), ['aa:bb:cc:00:00:01', 'aa:bb:cc:00:00:02']);
      const other = m.resolve({ uuid: '7e57b001-0000-4000-8000-000000000002', mac: 'aa:bb:cc:00:00:02' });
      assert.notEqual(other.machine.id, a.machine.id);
      assert.deepEqual(m.get(a.machine.id)!.macs, ['aa:bb:cc:00:00:01']);
      assert.equal(m.findByIp('192.0.2.50')!.id, a.machine.id);
      assert.equal(m.findByMac('aa:bb:cc:00:00:02')!.id, other.machine.id);
    } finally {
      db.close();
    }
  });

  it('batches timeline events and flushes them in one transaction', () => {
    const { db } = openInventory(fresh());
    try {
      const m = new Machines(db);
      const writer = new WriteBehind(db, { tickMs: 10_000 });
      const t = new Timeline(db, writer);
      const { machine } = m.resolve({ mac: 'aa:bb:cc:00:00:09' });
      const heard: string[] = [];
      t.subscribe((e) => heard.push(e.kind));
      t.append({ machineId: machine.id, kind: 'dhcp.discover', source: 'dhcp', message: 'PXE DISCOVER' });
      t.append({ machineId: machine.id, kind: 'tftp.done', source: 'tftp', message: 'ipxe.efi sent', data: { bytes: 1 } });
      assert.deepEqual(heard, ['dhcp.discover', 'tftp.done']);
      assert.equal(t.list(machine.id).length, 0);
      writer.flush();
      const rows = t.list(machine.id);
      assert.deepEqual(rows.map((r) => r.kind), ['dhcp.discover', 'tftp.done']);
      assert.deepEqual(rows[1]!.data, { bytes: 1 });
    } finally {
      db.close();
    }
  });

  it('keeps the other buffered writes when one of them fails', () => {
    const { db } = openInventory(fresh());
    try {
      const errors: unknown[] = [];
      const writer = new WriteBehind(db, { tickMs: 10_000, onError: (e) => errors.push(e) });
      const t = new Timeline(db, writer);
      t.append({ machineId: null, kind: 'a', source: 'system', message: 'first' });
      t.append({ machineId: 'm-does-not-exist', kind: 'b', source: 'system', message: 'violates the foreign key' });
      t.append({ machineId: null, kind: 'c', source: 'system', message: 'third' });
      writer.flush();
      assert.equal(errors.length, 1);
      assert.equal(writer.failures, 1);
      assert.deepEqual((db.prepare('SELECT kind FROM timeline ORDER BY id').all() as { kind: string }[]).map((r) => r.kind), ['a', 'c']);
    } finally {
      db.close();
    }
  });
});
