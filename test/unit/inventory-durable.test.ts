import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { audit } from '../../src/inventory/audit.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { DurableCommits } from '../../src/inventory/durable.ts';
import { tempDir } from '../helpers/heph.ts';

function setup(): { db: ReturnType<typeof openInventory>['db']; durable: DurableCommits; done(): Promise<void> } {
  const d = tempDir();
  const { db } = openInventory(d.path);
  const durable = new DurableCommits(db);
  return {
    db,
    durable,
    async done() {
      await durable.close();
      db.close();
      d.remove();
    },
  };
}

const count = (db: ReturnType<typeof openInventory>['db']): number => (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
const syncMode = (db: ReturnType<typeof openInventory>['db']): number => db.pragma('synchronous', { simple: true }) as number;

/** The frames in the WAL: written since the last checkpoint that reset it. */
const walFrames = (db: ReturnType<typeof openInventory>['db']): number => (db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]!.log;

test('a durable commit is visible at once on this connection and returns its value; its turn commits in the check phase, back at synchronous=FULL', async () => {
  const t = setup();
  const other = new Database(t.db.name, { readonly: true });
  try {
    const { value, committed, durable } = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'one' }));
    assert.ok(value > 0, 'the row id comes back before the commit');
    assert.equal(count(t.db), 1);
    assert.equal(count(other), 0, 'not committed yet: other connections do not see it');
    await committed;
    assert.equal(count(other), 1);
    assert.equal(t.durable.turns, 1);
    assert.equal(syncMode(t.db), 2, 'FULL again for every other commit');
    assert.equal(t.db.inTransaction, false);
    await durable;
    assert.equal(t.durable.syncs, 1);
  } finally {
    other.close();
    await t.done();
  }
});

test('commits in the same turn share one transaction and one fdatasync; one made after a sync started waits for the next', async () => {
  const t = setup();
  try {
    const first = Array.from({ length: 20 }, (_, i) => t.durable.commit(() => audit(t.db, { actor: 'test', action: `a${i}` })).durable);
    await Promise.all(first);
    assert.equal(t.durable.turns, 1, 'one transaction for 20 commits in one turn');
    assert.equal(t.durable.syncs, 1, 'one sync for 20 commits in one turn');
    const a = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'b1' })).durable;
    // Next turn: a's sync has started (or even finished), so b's frames need another one.
    await new Promise((r) => setImmediate(r));
    const b = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'b2' })).durable;
    await Promise.all([a, b]);
    assert.equal(t.durable.turns, 3);
    assert.equal(t.durable.syncs, 3);
    assert.equal(count(t.db), 22);
  } finally {
    await t.done();
  }
});

test('one shared transaction writes a hot page once, not once per commit', async () => {
  const t = setup();
  try {
    const write = (tag: string): Promise<void> => t.durable.commit(() => audit(t.db, { actor: 'test', action: tag, detail: { pad: 'x'.repeat(100) } })).durable;
    t.db.pragma('wal_checkpoint(TRUNCATE)');
    await Promise.all(Array.from({ length: 50 }, (_, i) => write(`shared${i}`)));
    const shared = walFrames(t.db);
    t.db.pragma('wal_checkpoint(TRUNCATE)');
    for (let i = 0; i < 50; i++) await write(`own${i}`);
    const own = walFrames(t.db);
    assert.equal(t.durable.turns, 51);
    assert.ok(own >= 50, `each commit of its own wrote at least a frame: ${own}`);
    assert.ok(shared * 10 <= own, `50 commits in one turn wrote ${shared} frames, 50 in 50 turns ${own}`);
  } finally {
    await t.done();
  }
});

test("a write that throws rolls back alone and throws to its caller; the turn's others commit", async () => {
  const t = setup();
  try {
    const before = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'before' }));
    assert.throws(
      () =>
        t.durable.commit(() => {
          audit(t.db, { actor: 'test', action: 'half' });
          throw new Error('refused halfway');
        }),
      /refused halfway/,
    );
    const after = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'after' }));
    await Promise.all([before.durable, after.durable]);
    assert.deepEqual(
      (t.db.prepare('SELECT action FROM audit ORDER BY id').all() as { action: string }[]).map((r) => r.action),
      ['before', 'after'],
    );
    assert.equal(syncMode(t.db), 2);
  } finally {
    await t.done();
  }
});

test('a turn whose commit fails rejects every commit in it, keeps none of them, and the next turn works', async () => {
  const t = setup();
  try {
    const kept = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'with-the-bad-one' }));
    // A foreign key checked only at COMMIT: the way to make SQLite refuse a commit here (a full disk does it too).
    const bad = t.durable.commit(() => {
      t.db.pragma('defer_foreign_keys = ON');
      t.db.prepare("INSERT INTO timeline (machine_id, at, kind, source, message) VALUES ('no-such-machine', 1, 'x', 'api', 'x')").run();
    });
    for (const c of [kept, bad]) {
      await assert.rejects(c.committed, /FOREIGN KEY/);
      await assert.rejects(c.durable, /FOREIGN KEY/);
    }
    assert.equal(count(t.db), 0);
    assert.equal(t.db.inTransaction, false);
    assert.equal(syncMode(t.db), 2);
    await t.durable.commit(() => audit(t.db, { actor: 'test', action: 'next' })).durable;
    assert.equal(count(t.db), 1);
  } finally {
    await t.done();
  }
});

test('any other transaction on the connection first commits the open turn, then runs on its own at synchronous=FULL', async () => {
  const t = setup();
  const other = new Database(t.db.name, { readonly: true });
  try {
    const { committed } = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'boot' }));
    const mode = t.db.transaction(() => {
      audit(t.db, { actor: 'test', action: 'admin' });
      return syncMode(t.db);
    })();
    assert.equal(mode, 2, 'the foreign transaction ran at FULL');
    assert.equal(t.durable.turns, 1, 'the turn was committed first');
    assert.equal(count(other), 2, 'both are committed before the foreign transaction returns');
    await committed;
    // alone(): the write-behind queue's commit, now and on its own, throwing as its transaction does.
    t.durable.commit(() => audit(t.db, { actor: 'test', action: 'boot2' }));
    t.durable.alone(() => void audit(t.db, { actor: 'test', action: 'queued' }));
    assert.equal(t.durable.turns, 2);
    assert.equal(count(other), 4);
    assert.throws(() => t.durable.alone(() => void t.db.prepare('INSERT INTO nowhere VALUES (1)').run()), /no such table/);
    assert.equal(t.db.inTransaction, false);
    assert.equal(syncMode(t.db), 2);
  } finally {
    other.close();
    await t.done();
  }
});

test('inside a caller\'s transaction a durable commit is a savepoint of it, and still settles', async () => {
  const t = setup();
  try {
    let inner: Promise<void> | undefined;
    t.db.transaction(() => {
      audit(t.db, { actor: 'test', action: 'outer' });
      inner = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'inner' })).durable;
    })();
    await inner;
    assert.equal(count(t.db), 2);
    assert.equal(syncMode(t.db), 2);
    // A failing one inside rolls back only itself.
    t.db.transaction(() => {
      assert.throws(() =>
        t.durable.commit(() => {
          audit(t.db, { actor: 'test', action: 'lost' });
          throw new Error('no');
        }),
      );
      audit(t.db, { actor: 'test', action: 'kept' });
    })();
    assert.equal(count(t.db), 3);
  } finally {
    await t.done();
  }
});
