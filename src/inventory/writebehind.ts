import type { DB } from './db.ts';

/**
 * Coalesces writes that need not be durable before a reply (sightings, timeline events) into one transaction
 * per tick: with synchronous=FULL every commit is an fsync, and a boot storm would otherwise queue on the disk.
 * Writes that must be durable first (tokens, audit before a secret) bypass this and commit inline.
 */
export class WriteBehind {
  private queue: ((db: DB) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  failures = 0;

  constructor(
    private readonly db: DB,
    private readonly opts: { tickMs?: number; maxBatch?: number; onError?: (err: unknown) => void } = {},
  ) {}

  enqueue(write: (db: DB) => void): void {
    this.queue.push(write);
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
      this.db.transaction(() => {
        for (const w of batch) w(this.db);
      }).immediate();
    } catch {
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
}
