import { readFileSync } from 'node:fs';

/**
 * Samples the state of a process's main thread (/proc/<pid>/task/<pid>/stat): the share of samples in state D
 * (uninterruptible sleep, in practice waiting for the disk, e.g. an fsync) is time its event loop was stopped.
 */
export function watchDiskWait(pid: number, everyMs = 50): { stop(): void; fraction(): number; samples(): number } {
  let total = 0;
  let d = 0;
  const sample = (): void => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
      total++;
      if (stat[stat.lastIndexOf(')') + 2] === 'D') d++;
    } catch {
      // Exited.
    }
  };
  const t = setInterval(sample, everyMs);
  return { stop: () => clearInterval(t), fraction: () => (total ? d / total : NaN), samples: () => total };
}
