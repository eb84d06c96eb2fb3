import { readdirSync, readFileSync } from 'node:fs';

/** Shared helpers for the benchmarks: percentiles, a process's CPU and memory, and a plain table. */

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarize(samplesMs: number[]): LatencySummary {
  const s = [...samplesMs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
}

/** Runs `fn` over `items`, at most `concurrency` at a time, in order of start. */
export async function inPool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
    }),
  );
}

const CLK_TCK = 100;
const PAGE = 4096;

/** CPU seconds (user + system) and resident memory of a process, or with `tid` of one of its threads, from /proc. */
export function procUsage(pid: number, tid?: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { cpuSeconds: (utime + stime) / CLK_TCK, rssBytes: rssPages * PAGE };
}

/**
 * CPU seconds of each of a process's threads, summed by thread name (/proc/<pid>/task/<tid>/comm): the main
 * thread as `main`, heph's workers by the names startWorker gives them (heph-tftp …), and every thread Node
 * leaves unnamed (V8's compiler and GC helpers, libuv's pool) as `node`. Threads that have exited are not counted.
 */
export function threadCpu(pid: number): Map<string, number> {
  const by = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = Number(tid) === pid ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      by.set(name, (by.get(name) ?? 0) + procUsage(pid, Number(tid)).cpuSeconds);
    } catch {
      // Exited meanwhile.
    }
  }
  return by;
}

/**
 * The share of CPU time the hypervisor gave to other guests (steal) from now until the returned function is
 * called, in percent of all CPU time. On a shared VM a few percent of steal decides a p99 by itself: stolen
 * slices last milliseconds, and 1 % of a 2 s run is 20 ms.
 */
export function watchSteal(): () => number {
  const read = (): number[] => readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const before = read();
  return () => {
    const d = read().map((v, i) => v - (before[i] ?? 0));
    const total = d.reduce((a, b) => a + b, 0);
    // Fields: user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user).
    return total > 0 ? (100 * (d[7] ?? 0)) / (total - (d[8] ?? 0) - (d[9] ?? 0)) : NaN;
  };
}

/**
 * The most memory `pid` has had resident since it started (or last exec'd): the kernel's own high-water mark
 * (VmHWM), so a peak between two samples is not missed. Sampled every 50 ms, the storm's peak read up to 10 MiB low:
 * a 50 Hz sampler beside it saw 294 MiB where the bench printed 285.
 */
export function peakRss(pid: number): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!kb) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb[1]) * 1024;
}

export function table(rows: Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : (v ?? ''));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => `| ${vals.map((v, i) => v.padEnd(width[i]!)).join(' | ')} |`;
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

/**
 * Runs `cleanup` when the bench is stopped by SIGINT or SIGTERM (Ctrl-C, `timeout`), then exits 130 or 143: Node
 * would otherwise die at once and leave heph, nginx, dnsmasq and the namespaces behind. Returns `cleanup` made to run
 * once, for the bench's own `finally`. A second signal (Ctrl-C reaches run.mjs and the bench both) waits for the same.
 */
export function cleanupOnSignal(cleanup: () => Promise<void> | void): () => Promise<void> {
  let running: Promise<void> | undefined;
  const once = (): Promise<void> => (running ??= Promise.resolve().then(cleanup));
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const)
    process.on(signal, () => {
      console.error(`\n${signal}: stopping what the bench started`);
      void once().finally(() => process.exit(code));
    });
  return once;
}
