// Run first in every worker thread (threads.ts): names the OS thread after its job, as top -H, ps -L, perf and
// /proc/<pid>/task/*/comm show it. Node names none of its threads, so heph's workers and V8's own helpers all read
// "node" and the one that is busy cannot be told apart from the others.
import { isMainThread, workerData } from 'node:worker_threads';
import { libc } from './libc.ts';

const PR_SET_NAME = 15;
const name = (workerData as { threadName?: unknown } | null)?.threadName;
if (!isMainThread && typeof name === 'string') {
  try {
    // The kernel keeps 15 bytes (TASK_COMM_LEN).
    (libc().func('int prctl(int, const char *, unsigned long, unsigned long, unsigned long)') as (...a: unknown[]) => number)(PR_SET_NAME, name.slice(0, 15), 0, 0, 0);
  } catch {
    // Only people reading top lose: the thread keeps the name "node".
  }
}
