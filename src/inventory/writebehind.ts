import type { DB } from './db.ts';

/** Errors that say "the disk, not the write, is the problem": keep the writes and try again later. */
const TRANSIENT = new Set(['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_READONLY']);

/** How long one inline disk error keeps /healthz degraded (machines retry within seconds while the disk is full). */
const INLINE_FAILURE_MS = 30_000;

export interface WriteBehindOptions {
  tickMs?: number;
  maxBatch?: number;
  /** Writes kept while the disk refuses them; beyond this the oldest are dropped (and counted). */
  maxPending?: number;
  /** First retry delay after a transient failure; doubles up to 30 s. */
  retryMs?: number;
  onError?: (err: unknown) => void;
  onDrop?: (count: number) => void;
  /**
   * Runs a batch in one transaction (throwing as the transaction does). Default: an immediate transaction at the
   * connection's synchronous=FULL, an fsync on this thread; the daemon commits through DurableCommits instead.
   */
  commit?: (batch: () => void) => void;
}

/**
 * Coalesces writes that need not be durable before a reply (sightings, timeline events) into one transaction
 * per tick: with synchronous=FULL every commit is an fsync, and a boot storm would otherwise queue on the disk.
 * Writes that must be durable first (tokens, audit before a secret) bypass this and commit inline.
 *
 * When the disk is full (or failing) the batch is kept and retried with backoff, so nothing is lost while space
 * returns; `stalled` tells /healthz. A write that fails for its own reason (a constraint) is dropped alone.
 */
export class WriteBehind {
  private queue: ((db: DB) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private retryDelay = 0;
  failures = 0;
  dropped = 0;
  /** The transient error that is holding writes back, if any. */
  stalled: string | undefined;
  /** The last disk error of a write that commits inline (a token, a new machine), which this queue never sees. */
  private inlineFailure: { at: number; detail: string } | undefined;

  constructor(
    private readonly db: DB,
    private readonly opts: WriteBehindOptions = {},
  ) {}

  enqueue(write: (db: DB) => void): void {
    this.queue.push(write);
    const max = this.opts.maxPending ?? 200_000;
    if (this.queue.length > max) {
      const n = this.queue.length - max;
      this.queue.splice(0, n);
      this.dropped += n;
      this.opts.onDrop?.(n);
    }
    if (this.stalled) return;
    if (this.queue.length >= (this.opts.maxBatch ?? 2000)) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.opts.tickMs ?? 50);
  }

  get pending(): number {
    return this.queue.length;
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    try {
      const all = (): void => {
        for (const w of batch) w(this.db);
      };
      if (this.opts.commit) this.opts.commit(all);
      else this.db.transaction(all).immediate();
      this.stalled = undefined;
      this.retryDelay = 0;
    } catch (err) {
      if (TRANSIENT.has(baseCode(err))) {
        this.queue = batch.concat(this.queue);
        this.stalled = `${baseCode(err)}: ${(err as Error).message}`;
        this.failures++;
        this.opts.onError?.(err);
        this.retryDelay = Math.min(30_000, this.retryDelay ? this.retryDelay * 2 : (this.opts.retryMs ?? 1000));
        this.timer = setTimeout(() => this.flush(), this.retryDelay);
        this.timer.unref();
        return;
      }
      // One bad write must not drop the others: retry them one by one and report what still fails.
      for (const w of batch) {
        try {
          this.db.transaction(() => w(this.db)).immediate();
        } catch (e) {
          this.failures++;
          this.opts.onError?.(e);
        }
      }
    }
  }

  /**
   * Records `err` if it is a disk error from an inline write (the request that hit it answers 500 and is retried by
   * the machine); /healthz then says so for INLINE_FAILURE_MS, so a full disk shows even when nothing is buffered.
   */
  noteInlineFailure(err: unknown): void {
    if (TRANSIENT.has(baseCode(err))) this.inlineFailure = { at: Date.now(), detail: `${baseCode(err)}: ${(err as Error).message}` };
  }

  /** What is wrong with the disk right now, as far as writes have seen; undefined when all is well. */
  diskProblem(now = Date.now()): string | undefined {
    if (this.stalled) return `writes are waiting for the disk: ${this.stalled}`;
    const f = this.inlineFailure;
    if (f && now - f.at < INLINE_FAILURE_MS) return `a write failed ${Math.round((now - f.at) / 1000)} s ago: ${f.detail}`;
    return undefined;
  }

  /** Stops retrying (at shutdown, after a last flush). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function baseCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code.replace(/^(SQLITE_[A-Z]+).*$/, '$1') : '';
}
