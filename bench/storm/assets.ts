import { inPool, summarize } from '../lib.ts';
import type { Download } from './http-stage.ts';

type Get = (ip: string, url: string) => Promise<Pick<Download, 'status' | 'bytes'>>;

export interface AssetPass {
  bytes: number;
  seconds: number;
  failures: number;
  /** Per download, ms. */
  latencies: number[];
}

/** Every machine downloads its URLs in turn, `concurrency` machines at a time. */
export async function assetPass(machines: { ip: string; urls: string[] }[], concurrency: number, get: Get): Promise<AssetPass> {
  let bytes = 0;
  let failures = 0;
  const latencies: number[] = [];
  const t0 = performance.now();
  await inPool(machines, concurrency, async (m) => {
    for (const url of m.urls) {
      const s = performance.now();
      try {
        const r = await get(m.ip, url);
        if (r.status === 200) bytes += r.bytes;
        else failures++;
        latencies.push(performance.now() - s);
      } catch {
        failures++;
      }
    }
  });
  return { bytes, seconds: (performance.now() - t0) / 1000, failures, latencies };
}

/**
 * The asset step against several servers, each measured twice in mirrored order (A B B A): whatever drifts during
 * the phase (heph finishing the storm's writes, a neighbour on the machine) weighs on every server alike.
 */
export async function assetPhase(servers: { name: string; machines: { ip: string; urls: string[] }[] }[], concurrency: number, get: Get): Promise<{ server: string; bytesPerS: number; failures: number; p50: number; p99: number }[]> {
  const passes = new Map<string, AssetPass[]>(servers.map((s) => [s.name, []]));
  for (const s of [...servers, ...[...servers].reverse()]) passes.get(s.name)!.push(await assetPass(s.machines, concurrency, get));
  return servers.map((s) => {
    const ps = passes.get(s.name)!;
    const sum = (k: 'bytes' | 'seconds' | 'failures'): number => ps.reduce((a, p) => a + p[k], 0);
    const { p50, p99 } = summarize(ps.flatMap((p) => p.latencies));
    return { server: s.name, bytesPerS: sum('bytes') / sum('seconds'), failures: sum('failures'), p50, p99 };
  });
}
