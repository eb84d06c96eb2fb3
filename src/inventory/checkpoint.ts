// WAL checkpoints off the event loop. SQLite's default checkpoints from whichever connection commits the frame
// that takes the WAL past 1000 pages: it copies those pages into the database file and fsyncs the WAL and the file,
// in the commit, on the main thread. Measured in a 1000-machine storm that was ~3 % of the main thread's CPU plus
// the fsyncs' wait, during which nothing is answered (on an SD card or a busy disk, a stall of tens to hundreds of
// milliseconds every 4 MB of writes). Here the main connection never checkpoints; a thread with its own connection
// does, every interval, without blocking the writer (PASSIVE). Closing the last connection still checkpoints
// everything, so the daemon stops this thread before it closes the database.
import type { Worker } from 'node:worker_threads';
import type { DB } from './db.ts';
import { startWorker, Supervisor } from '../threads.ts';

export interface CheckpointInit {
  file: string;
  intervalMs: number;
}
export type FromCheckpointer = { t: 'ready' } | { t: 'checkpointed'; log: number; checkpointed: number } | { t: 'failed'; message: string };
export type ToCheckpointer = { t: 'stop' };

/** How long stop() waits for the thread to close its connection. */
const STOP_WAIT_MS = 3000;

export class Checkpointer {
  private readonly sup: Supervisor<FromCheckpointer>;
  /** Checkpoints run so far, and the WAL frames the last one left behind (tests). */
  runs = 0;
  lastLeft = 0;
  /** Why the last checkpoint failed, while they fail. */
  failing: string | undefined;

  constructor(
    private readonly db: DB,
    init: CheckpointInit,
    /** `failed` for every failed checkpoint (`first`: the first since one succeeded); `recovered` once one succeeds again. */
    on: { failed(message: string, first: boolean): void; recovered(): void; died(err: Error, retryMs: number): void; restarted(): void },
  ) {
    this.sup = new Supervisor<FromCheckpointer>('WAL checkpoint thread', {
      start: () => startWorker('heph-checkpoint', new URL('./checkpoint-worker.ts', import.meta.url), init),
      message: (m) => {
        if (m.t === 'ready') return 'ready';
        if (m.t === 'failed') {
          on.failed(m.message, this.failing === undefined);
          this.failing = m.message;
          return undefined;
        }
        this.runs++;
        this.lastLeft = m.log - m.checkpointed;
        if (this.failing !== undefined) on.recovered();
        this.failing = undefined;
        return undefined;
      },
      died: (err, retryMs) => on.died(err, retryMs),
      restarted: () => on.restarted(),
    });
  }

  /** Turns the main connection's automatic checkpoints off once the thread checkpoints instead. */
  async start(): Promise<void> {
    await this.sup.launch();
    this.db.pragma('wal_autocheckpoint = 0');
  }

  async stop(): Promise<void> {
    await this.sup.stop((w: Worker) => w.postMessage({ t: 'stop' } satisfies ToCheckpointer), STOP_WAIT_MS);
    this.db.pragma('wal_autocheckpoint = 1000');
  }
}
