import assert from 'node:assert/strict';
import { test } from 'node:test';
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

test('a durable commit is visible at once, returns its value, and leaves the connection at synchronous=FULL', async () => {
  const t = setup();
  try {
    const { value, durable } = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'one' }));
    assert.ok(value > 0, 'the row id comes back before the sync');
    assert.equal(count(t.db), 1);
    assert.equal(syncMode(t.db), 2, 'FULL again for every other commit');
    await durable;
    assert.equal(t.durable.syncs, 1);
  } finally {
    await t.done();
  }
});

test('commits in the same turn share one fdatasync; one made after a sync started waits for the next', async () => {
  const t = setup();
  try {
    const first = Array.from({ length: 20 }, (_, i) => t.durable.commit(() => audit(t.db, { actor: 'test', action: `a${i}` })).durable);
    await Promise.all(first);
    assert.equal(t.durable.syncs, 1, 'one sync for 20 commits in one turn');
    const a = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'b1' })).durable;
    // Next turn: a's sync has started (or even finished), so b's frames need another one.
    await new Promise((r) => setImmediate(r));
    const b = t.durable.commit(() => audit(t.db, { actor: 'test', action: 'b2' })).durable;
    await Promise.all([a, b]);
    assert.equal(t.durable.syncs, 3);
    assert.equal(count(t.db), 22);
  } finally {
    await t.done();
  }
});

test('a write that throws commits nothing, throws to its caller and restores synchronous=FULL', async () => {
  const t = setup();
  try {
    assert.throws(
      () =>
        t.durable.commit(() => {
          audit(t.db, { actor: 'test', action: 'half' });
          throw new Error('refused halfway');
        }),
      /refused halfway/,
    );
    assert.equal(count(t.db), 0);
    assert.equal(syncMode(t.db), 2);
    await t.durable.commit(() => audit(t.db, { actor: 'test', action: 'after' })).durable;
    assert.equal(count(t.db), 1);
  } finally {
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
