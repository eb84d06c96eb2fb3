import { inPool, summarize } from '../lib.ts';

/** One fetch of the boot file from `ip`, timed by the helper; rejects on a failed fetch or wrong bytes. */
type Fetch = (ip: string) => Promise<{ bytes: number; seconds: number }>;

export interface TftpPass {
  bytes: number;
  seconds: number;
  failures: number;
  /** Per fetch, ms. */
  latencies: number[];
  /** The TFTP helper's own CPU seconds over the pass. */
  clientCpuS: number;
}

/**
 * The storm's TFTP step alone: every machine fetches the boot file, `concurrency` at a time, through a helper of
 * its own (`open` starts it, `end` resolves with its CPU seconds), so each pass's client CPU is its own.
 */
export async function tftpPass(ips: string[], concurrency: number, open: () => { fetch: Fetch; end(): Promise<number> }): Promise<TftpPass> {
  const helper = open();
  let bytes = 0;
  let failures = 0;
  const latencies: number[] = [];
  const t0 = performance.now();
  let seconds = NaN;
  let clientCpuS = NaN;
  try {
    await inPool(ips, concurrency, async (ip) => {
      try {
        const r = await helper.fetch(ip);
        bytes += r.bytes;
        latencies.push(r.seconds * 1000);
      } catch {
        failures++;
      }
    });
    seconds = (performance.now() - t0) / 1000;
  } finally {
    clientCpuS = await helper.end();
  }
  return { bytes, seconds, failures, latencies, clientCpuS };
}

export interface TftpResult {
  server: string;
  bytesPerS: number;
  failures: number;
  p50: number;
  p99: number;
  clientCpuS: number;
}

/**
 * The TFTP step alone against several servers, each twice in mirrored order (A B B A) as the asset step is.
 * `onPass` hears each pass begin and end, so that the caller can read the server's CPU around it.
 */
export async function tftpPhase(
  servers: string[],
  pass: (server: string) => Promise<TftpPass>,
  onPass: (server: string, phase: 'begin' | 'end') => void,
): Promise<TftpResult[]> {
  const passes = new Map<string, TftpPass[]>(servers.map((s) => [s, []]));
  for (const s of [...servers, ...[...servers].reverse()]) {
    onPass(s, 'begin');
    passes.get(s)!.push(await pass(s));
    onPass(s, 'end');
  }
  return servers.map((s) => {
    const ps = passes.get(s)!;
    const sum = (k: 'bytes' | 'seconds' | 'failures' | 'clientCpuS'): number => ps.reduce((a, p) => a + p[k], 0);
    const { p50, p99 } = summarize(ps.flatMap((p) => p.latencies));
    return { server: s, bytesPerS: sum('bytes') / sum('seconds'), failures: sum('failures'), p50, p99, clientCpuS: sum('clientCpuS') };
  });
}
