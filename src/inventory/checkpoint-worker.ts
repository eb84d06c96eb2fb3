// The WAL checkpointer's thread: its own connection to the inventory, checkpointing every interval. See
// checkpoint.ts for why this is not left to the connection that commits.
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import type { CheckpointInit, FromCheckpointer, ToCheckpointer } from './checkpoint.ts';

const { file, intervalMs } = (workerData as { data: CheckpointInit }).data;
const post = (m: FromCheckpointer): void => parentPort!.postMessage(m);

const db = new Database(file, { fileMustExist: true });
// A locked database is simply tried again at the next interval.
db.pragma('busy_timeout = 100');
// A checkpoint syncs the WAL before it copies pages and the database file after, whatever this level (above OFF).
db.pragma('synchronous = FULL');

function checkpoint(): void {
  try {
    // PASSIVE: copies what no reader still needs and never waits for the writer, so a commit is never held up.
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    post({ t: 'checkpointed', log: r?.log ?? 0, checkpointed: r?.checkpointed ?? 0 });
  } catch (err) {
    post({ t: 'failed', message: (err as Error).message });
  }
}

const timer = setInterval(checkpoint, intervalMs);
parentPort!.on('message', (m: ToCheckpointer) => {
  if (m.t !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
post({ t: 'ready' });
