// Run first in every worker thread (threads.ts). It names the OS thread after its job, as top -H, ps -L, perf and
// /proc/<pid>/task/*/comm show it: Node names none of its threads, so heph's workers and V8's own helpers all read
// "node" and the one that is busy cannot be told apart from the others. And it raises the thread's CPU priority
// when asked to (settings.ts says why, for whom); whether that took is checked from outside (priorityShortfall), as a
// thread this early has nobody to tell.
import { getPriority, setPriority } from 'node:os';
import { isMainThread, workerData } from 'node:worker_threads';
import { libc } from './libc.ts';

const PR_SET_NAME = 15;
const { threadName: name, priorityBoost: boost } = (workerData as { threadName?: unknown; priorityBoost?: unknown } | null) ?? {};
if (!isMainThread && typeof name === 'string') {
  try {
    // The kernel keeps 15 bytes (TASK_COMM_LEN).
    (libc().func('int prctl(int, const char *, unsigned long, unsigned long, unsigned long)') as (...a: unknown[]) => number)(PR_SET_NAME, name.slice(0, 15), 0, 0, 0);
  } catch {
    // Only people reading top lose: the thread keeps the name "node".
  }
}
if (!isMainThread && typeof boost === 'number' && boost > 0) {
  try {
    // On Linux the nice value is per thread, and pid 0 is the calling thread: this one only, not the process.
    setPriority(0, Math.max(-20, getPriority(0) - boost));
  } catch {
    // No CAP_SYS_NICE: the thread keeps heph's priority, and the service that asked says so.
  }
}
