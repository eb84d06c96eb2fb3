// Commits that must be on disk before the reply that depends on them (a token before the script that carries it, an
// audit row before a config), without stopping the event loop for an fsync each.
//
// With synchronous=FULL every commit fsyncs the WAL on the main thread: ~0.6 ms on this VM's idle disk, several ms
// on a busy or spinning one, and a storm made four of them per machine, each one stopping every other request.
// Here the transaction commits with synchronous=NORMAL (its frames are written to the WAL, not synced), and the
// reply waits for an fdatasync of the WAL file on libuv's thread pool instead. One fdatasync covers every frame
// written before it started, so requests committing meanwhile share the next one: group commit, on the disk's time
// rather than the main thread's. The WAL's own checksums and commit frames make a synced transaction recoverable
// exactly as a FULL commit is. Everything else keeps synchronous=FULL.
import { closeSync, fdatasync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import { statement, type DB } from './db.ts';

const datasync = promisify(fdatasync);

export class DurableCommits {
  /** The WAL's descriptor, opened up front (the WAL exists once the database is open in WAL mode), else at first sync. */
  private wal: number | undefined;
  private running: Promise<void> | undefined;
  /** The sync that the commits made since the last one started will wait for; not started yet. */
  private next: Promise<void> | undefined;
  /** fdatasync calls so far (tests: commits in the same turn share one). */
  syncs = 0;

  constructor(private readonly db: DB) {
    try {
      this.wal = openSync(this.walPath, 'r');
    } catch {
      // Not there yet: the first sync opens it (and reports if it still cannot).
    }
  }

  private get walPath(): string {
    return `${this.db.name}-wal`;
  }

  /**
   * Runs `fn` in one immediate transaction now and returns its value at once; `durable` settles when the
   * transaction is on disk (rejects if the sync fails: the caller must then not reply as if it were). A caller that
   * replies without waiting still has its rows made durable by the next sync anyone asks for, or by a checkpoint.
   */
  commit<T>(fn: () => T): { value: T; durable: Promise<void> } {
    let value: T;
    if (this.db.inTransaction) {
      // Inside a caller's transaction (SQLite refuses to change the safety level there): a savepoint of it. The
      // caller's commit, synchronous like all of better-sqlite3, happens before the sync below starts.
      value = this.db.transaction(fn)();
    } else {
      // Prepared once: db.pragma() prepares its statement on every call, twice per commit here.
      statement(this.db, 'PRAGMA synchronous = NORMAL').run();
      try {
        value = this.db.transaction(fn).immediate();
      } finally {
        statement(this.db, 'PRAGMA synchronous = FULL').run();
      }
    }
    const durable = this.sync();
    // A caller that does not wait must not see an unhandled rejection; one that waits still gets it.
    durable.catch(() => {});
    return { value, durable };
  }

  /** Closes the WAL descriptor (the daemon, when it stops). */
  async close(): Promise<void> {
    await Promise.allSettled([this.running, this.next]);
    if (this.wal !== undefined) closeSync(this.wal);
    this.wal = undefined;
  }

  /**
   * Settles once a sync that started after this call has finished. The sync starts in the next check phase, so
   * every commit of this turn of the event loop shares it; if one is still running (it may have started before
   * these frames were written) the next starts after it.
   */
  private sync(): Promise<void> {
    this.next ??= new Promise<void>((resolve, reject) => {
      const start = (): void => {
        this.next = undefined;
        this.running = this.run();
        this.running.then(resolve, reject);
      };
      if (this.running) void this.running.catch(() => {}).then(() => setImmediate(start));
      else setImmediate(start);
    });
    return this.next;
  }

  private async run(): Promise<void> {
    try {
      this.wal ??= openSync(this.walPath, 'r');
      this.syncs++;
      await datasync(this.wal);
    } finally {
      this.running = undefined;
    }
  }
}
