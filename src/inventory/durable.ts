// Commits that must be on disk before the reply that depends on them (a token before the script that carries it, an
// audit row before a config), without stopping the event loop for an fsync each.
//
// With synchronous=FULL every commit fsyncs the WAL on the main thread: ~0.6 ms on this VM's idle disk, several ms
// on a busy or spinning one, and a storm made four of them per machine, each one stopping every other request.
// Here the writes commit with synchronous=NORMAL (their frames are written to the WAL, not synced), and the reply
// waits for an fdatasync of the WAL file on libuv's thread pool instead. One fdatasync covers every frame written
// before it started, so requests committing meanwhile share the next one: group commit, on the disk's time rather
// than the main thread's. The WAL's own checksums and commit frames make a synced transaction recoverable exactly
// as a FULL commit is. Everything else keeps synchronous=FULL.
//
// The commits of one turn of the event loop also share one transaction (each in a savepoint of it), committed in
// the check phase: a WAL transaction writes every page it touched as a frame, so a commit per request wrote the hot
// pages (the tail of the audit and timeline tables, their indexes, the machines' pages) again for each request. In
// a boot storm of 1000 machines the WAL grew to 77 MB, and writing it, each frame a page the kernel had to zero
// first as the file grew, was a tenth of the main thread's time.
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import { statement, type DB } from './db.ts';

const datasync = promisify(fdatasync);

interface Settled {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function settled(): Settled {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  // A caller that does not wait must not see an unhandled rejection; one that waits still gets it.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** The transaction this turn's commits share: open from the first of them until the check phase, or settle(). */
interface Turn {
  committed: Settled;
  durable: Settled;
}

export interface Commit<T> {
  value: T;
  /**
   * Settles when the transaction holding the write has committed (rejects if that failed: the write is gone).
   * Inside a caller's own transaction it settles at once: that commit is the caller's, and it throws to the caller.
   */
  committed: Promise<void>;
  /** Settles when it is on disk (rejects if the commit or the sync failed: the caller must not reply as if it were). */
  durable: Promise<void>;
}

export class DurableCommits {
  /** The WAL's descriptor, opened up front (the WAL exists once the database is open in WAL mode), else at first sync. */
  private wal: number | undefined;
  private running: Promise<void> | undefined;
  /** The sync that the commits made since the last one started will wait for; not started yet. */
  private next: Promise<void> | undefined;
  private turn: Turn | undefined;
  /** How deep in commit functions this thread is: transactions begun there are part of the commit, not foreign. */
  private depth = 0;
  /** better-sqlite3's own transaction(), before the wrapper below. */
  private readonly transaction: DB['transaction'];
  /** fdatasync calls so far (tests: commits in the same turn share one). */
  syncs = 0;
  /** Shared transactions committed so far (tests). */
  turns = 0;

  constructor(private readonly db: DB) {
    try {
      this.wal = openSync(this.walPath, 'r');
    } catch {
      // Not there yet: the first sync opens it (and reports if it still cannot).
    }
    // Any other transaction on this connection (the admin API's, the write-behind queue's) first commits the open
    // turn, so it begins, runs at synchronous=FULL and commits on its own as it did before turns: a caller of
    // db.transaction() never has its work folded into a commit that happens later.
    this.transaction = db.transaction.bind(db);
    const own = this.transaction;
    db.transaction = ((fn: (...args: unknown[]) => unknown) => {
      const t = own(fn);
      const settleFirst =
        <A extends unknown[], R>(run: (...args: A) => R) =>
        (...args: A): R => {
          if (this.depth === 0) this.settle();
          return run(...args);
        };
      return Object.assign(settleFirst(t), { default: settleFirst(t.default), deferred: settleFirst(t.deferred), immediate: settleFirst(t.immediate), exclusive: settleFirst(t.exclusive) });
    }) as DB['transaction'];
  }

  private get walPath(): string {
    return `${this.db.name}-wal`;
  }

  /**
   * Runs `fn` now, in a savepoint of this turn's shared transaction, and returns its value at once; a throw rolls
   * back `fn`'s writes alone and reaches the caller. The shared transaction commits in the check phase, then one
   * fdatasync covers it. Inside a caller's own transaction, `fn` is a savepoint of that instead, and the sync asked
   * for follows the caller's commit. A caller that replies without waiting still has its rows made durable by the
   * next sync anyone asks for, or by a checkpoint.
   */
  commit<T>(fn: () => T): Commit<T> {
    if (this.db.inTransaction && !this.turn) {
      const value = this.savepoint(fn);
      return { value, committed: Promise.resolve(), durable: this.sync() };
    }
    const turn = this.turn ?? this.open();
    return { value: this.savepoint(fn), committed: turn.committed.promise, durable: turn.durable.promise };
  }

  /**
   * Runs `fn` in a transaction of its own, now, and throws as that transaction does, a failed commit included: for a
   * caller that keeps its writes and tries again when the disk refuses them (the write-behind queue), which a
   * shared commit in the check phase would not tell. The open turn is committed first. Called from inside a commit
   * function, `fn` is a savepoint of that commit instead.
   */
  alone(fn: () => void): { durable: Promise<void> } {
    if (this.depth > 0 || (this.db.inTransaction && !this.turn)) return this.commit(fn);
    this.settle();
    statement(this.db, 'PRAGMA synchronous = NORMAL').run();
    try {
      this.inCommit(() => this.transaction(fn).immediate());
    } finally {
      statement(this.db, 'PRAGMA synchronous = FULL').run();
    }
    return { durable: this.sync() };
  }

  /**
   * Commits the open turn now, if there is one (its commits' syncs follow as usual). `sync`: also fdatasync the WAL
   * before returning, for a caller about to answer for writes that may have joined the turn.
   */
  settle(opts: { sync?: boolean } = {}): void {
    const turn = this.turn;
    if (!turn) return;
    this.turn = undefined;
    this.turns++;
    try {
      statement(this.db, 'COMMIT').run();
    } catch (err) {
      // SQLite may have rolled back on its own (a full disk); if not, nothing of the turn may stay half-done.
      if (this.db.inTransaction) statement(this.db, 'ROLLBACK').run();
      turn.committed.reject(err);
      turn.durable.reject(err);
      return;
    } finally {
      statement(this.db, 'PRAGMA synchronous = FULL').run();
    }
    turn.committed.resolve();
    if (opts.sync) this.syncNow();
    this.sync(true).then(turn.durable.resolve, turn.durable.reject);
  }

  /** Closes the WAL descriptor (the daemon, when it stops). */
  async close(): Promise<void> {
    this.settle();
    await Promise.allSettled([this.running, this.next]);
    if (this.wal !== undefined) closeSync(this.wal);
    this.wal = undefined;
  }

  private open(): Turn {
    // SQLite refuses to change the safety level inside a transaction, so it is set around it.
    statement(this.db, 'PRAGMA synchronous = NORMAL').run();
    try {
      statement(this.db, 'BEGIN IMMEDIATE').run();
    } catch (err) {
      statement(this.db, 'PRAGMA synchronous = FULL').run();
      throw err;
    }
    const turn: Turn = { committed: settled(), durable: settled() };
    this.turn = turn;
    setImmediate(() => this.settle());
    return turn;
  }

  private savepoint<T>(fn: () => T): T {
    return this.inCommit(() => this.transaction(fn)());
  }

  private inCommit<T>(run: () => T): T {
    this.depth++;
    try {
      return run();
    } finally {
      this.depth--;
    }
  }

  private syncNow(): void {
    fdatasyncSync(this.walToSync());
  }

  /** The WAL's descriptor, opened if it was not yet, for one more sync (counted). */
  private walToSync(): number {
    this.syncs++;
    return (this.wal ??= openSync(this.walPath, 'r'));
  }

  /**
   * Settles once a sync that started after this call has finished. The sync starts in the next check phase, so
   * every commit of this turn shares it (`now`: at once, when called from the check phase); if one is still
   * running (it may have started before these frames were written) the next starts after it.
   */
  private sync(now = false): Promise<void> {
    if (this.next) return this.next;
    const next = settled();
    const start = (): void => {
      this.next = undefined;
      this.running = this.fsync();
      this.running.then(next.resolve, next.reject);
    };
    this.next = next.promise;
    if (this.running) void this.running.catch(() => {}).then(() => setImmediate(start));
    else if (now) start();
    else setImmediate(start);
    return next.promise;
  }

  private async fsync(): Promise<void> {
    try {
      await datasync(this.walToSync());
    } finally {
      this.running = undefined;
    }
  }
}
