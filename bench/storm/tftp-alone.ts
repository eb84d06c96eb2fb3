import { inPool } from '../lib.ts';
import { mirrored, pooled, type Pass, type PassSummary } from './passes.ts';

/** One fetch of the boot file from `ip`, timed by the helper; rejects on a failed fetch or wrong bytes. */
type Fetch = (ip: string) => Promise<{ bytes: number; seconds: number }>;

export interface TftpPass extends Pass {
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

export interface TftpResult extends PassSummary {
  clientCpuS: number;
}

/** The TFTP step alone against several servers, each twice in mirrored order, as the asset step is. */
export async function tftpPhase(servers: string[], pass: (server: string) => Promise<TftpPass>, onPass: (server: string, phase: 'begin' | 'end') => void | Promise<void>): Promise<TftpResult[]> {
  const passes = await mirrored(servers, pass, onPass);
  return [...passes].map(([server, ps]) => ({ ...pooled(server, ps), clientCpuS: ps.reduce((a, p) => a + p.clientCpuS, 0) }));
}

/**
 * What each of a server's passes cost the host: the server's CPU (`serverCpuS`, over all of them) and the helper's
 * (which runs on the same CPUs, in place of the machines' own); the shortest a pass could take with that work spread
 * over `cpuCount` CPUs; and how long each took. Undefined when a CPU figure is missing.
 */
export function tftpFloor(r: TftpResult, serverCpuS: number, cpuCount: number): { cpuS: number; floorS: number; wallS: number } | undefined {
  if (!(serverCpuS >= 0 && r.clientCpuS >= 0 && r.passes > 0)) return undefined;
  const cpuS = (serverCpuS + r.clientCpuS) / r.passes;
  return { cpuS, floorS: cpuS / cpuCount, wallS: r.seconds / r.passes };
}
