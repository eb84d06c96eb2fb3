import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Checkpointer } from '../../src/inventory/checkpoint.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { tempDir } from '../helpers/heph.ts';
import { canMount } from '../helpers/system.ts';
import { eventually } from '../helpers/wait.ts';

const PAGE = 4096;
const quiet = { failed: () => {}, recovered: () => {}, died: () => {}, restarted: () => {} };

/** ~100 pages per batch (by default ~2000 pages, twice SQLite's automatic checkpoint threshold), a transaction each. */
function writePages(db: ReturnType<typeof openInventory>['db'], batches = 20): void {
  db.exec('CREATE TABLE IF NOT EXISTS scratch (b BLOB) STRICT');
  const insert = db.prepare('INSERT INTO scratch (b) VALUES (?)');
  for (let t = 0; t < batches; t++) db.transaction(() => {
    for (let i = 0; i < 100; i++) insert.run(Buffer.alloc(PAGE - 100, t + i));
  })();
}

test('the committing connection never checkpoints; the thread does, and the database file gets the pages', async () => {
  const d = tempDir();
  const { db, file } = openInventory(d.path);
  const failures: string[] = [];
  // An interval longer than the test first: nothing but SQLite itself could checkpoint meanwhile.
  let cp = new Checkpointer(db, { file, intervalMs: 600_000 }, { ...quiet, failed: (m) => failures.push(m) });
  try {
    await cp.start();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0);
    const before = statSync(file).size;
    writePages(db);
    assert.ok(statSync(`${file}-wal`).size > 1500 * PAGE, `the WAL holds the writes (${statSync(`${file}-wal`).size} bytes)`);
    assert.equal(statSync(file).size, before, 'no checkpoint on the committing connection: the database file is unchanged');
    await cp.stop();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000, 'stopped: SQLite checkpoints as it would without the thread');

    cp = new Checkpointer(db, { file, intervalMs: 50 }, { ...quiet, failed: (m) => failures.push(m) });
    await cp.start();
    await eventually(() => (cp.runs > 0 && cp.lastLeft === 0) || undefined, 'a checkpoint that copied every frame');
    assert.ok(statSync(file).size > before + 1500 * PAGE, `the pages are in the database file (${statSync(file).size} bytes)`);
    assert.equal((db.prepare('SELECT count(*) AS n FROM scratch').get() as { n: number }).n, 2000);
    // The next commit starts the WAL over from its beginning: the checkpoint left nothing behind.
    writePages(db);
    await eventually(() => (cp.lastLeft === 0 && statSync(`${file}-wal`).size < 2200 * PAGE) || undefined, 'the WAL reused, not grown');
    assert.deepEqual(failures, []);
  } finally {
    await cp.stop();
    db.close();
  }
  assert.equal(existsSync(`${file}-wal`), false, 'closing the last connection checkpointed and removed the WAL');
  d.remove();
});

test('a checkpoint that fails (disk full) is reported once, and again when one succeeds', { skip: canMount() ? false : 'needs root to mount a small tmpfs' }, async () => {
  const mnt = tempDir();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt.path]);
  const filler = join(mnt.path, 'filler');
  const { db, file } = openInventory(join(mnt.path, 'data'));
  const seen: string[] = [];
  const cp = new Checkpointer(db, { file, intervalMs: 30 }, { ...quiet, failed: (m, first) => seen.push(`${first ? 'first' : 'again'}: ${m}`), recovered: () => seen.push('recovered') });
  try {
    // Frames in the WAL that the database file has no room for: copying them in must fail.
    db.pragma('wal_autocheckpoint = 0');
    writePages(db, 5);
    try {
      writeFileSync(filler, Buffer.alloc(8 << 20));
    } catch {
      // ENOSPC: the disk is full, as intended.
    }
    await cp.start();
    await eventually(() => (seen.length >= 2 ? true : undefined), 'two failed checkpoints');
    rmSync(filler);
    await eventually(() => (seen.includes('recovered') ? true : undefined), 'a checkpoint that succeeds again');
    assert.match(seen[0]!, /^first: .*(full|disk)/i);
    assert.match(seen[1]!, /^again: /);
    assert.equal(seen.filter((x) => x.startsWith('first')).length, 1, 'reported once while it keeps failing');
    assert.equal(cp.lastLeft, 0);
  } finally {
    await cp.stop();
    db.close();
    execFileSync('umount', ['-l', mnt.path]);
    mnt.remove();
  }
});
