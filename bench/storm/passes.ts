// The storm's steps measured alone against heph and a reference server (the asset step against nginx, the TFTP step
// against dnsmasq): each server's passes in mirrored order, then pooled.
import { summarize } from '../lib.ts';

/** One pass of a step alone against one server. */
export interface Pass {
  bytes: number;
  seconds: number;
  failures: number;
  /** Per item (download, fetch), ms. */
  latencies: number[];
}

export interface PassSummary {
  server: string;
  passes: number;
  /** Over all its passes. */
  seconds: number;
  bytesPerS: number;
  failures: number;
  p50: number;
  p99: number;
}

/**
 * Each server's pass twice, in mirrored order (A B B A): whatever drifts during the phase (heph finishing the
 * storm's writes, a neighbour on the machine) weighs on every server alike. `onPass` hears each pass begin and end,
 * so that the caller can read the server's CPU around it; the next pass waits for it. The map keeps the servers' order.
 */
export async function mirrored<P extends Pass>(servers: string[], pass: (server: string) => Promise<P>, onPass: (server: string, phase: 'begin' | 'end') => void | Promise<void> = () => {}): Promise<Map<string, P[]>> {
  const passes = new Map<string, P[]>(servers.map((s) => [s, []]));
  for (const s of [...servers, ...[...servers].reverse()]) {
    await onPass(s, 'begin');
    passes.get(s)!.push(await pass(s));
    await onPass(s, 'end');
  }
  return passes;
}

/** A server's passes together: bytes over their total time, failures, percentiles over every item. */
export function pooled(server: string, ps: Pass[]): PassSummary {
  const sum = (k: 'bytes' | 'seconds' | 'failures'): number => ps.reduce((a, p) => a + p[k], 0);
  const { p50, p99 } = summarize(ps.flatMap((p) => p.latencies));
  return { server, passes: ps.length, seconds: sum('seconds'), bytesPerS: sum('bytes') / sum('seconds'), failures: sum('failures'), p50, p99 };
}
