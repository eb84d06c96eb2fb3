import { inPool } from '../lib.ts';
import type { Download } from './http-stage.ts';
import { mirrored, pooled, type Pass, type PassSummary } from './passes.ts';

type Get = (ip: string, url: string) => Promise<Pick<Download, 'status' | 'bytes'>>;

/** Every machine downloads its URLs in turn, `concurrency` machines at a time. */
export async function assetPass(machines: { ip: string; urls: string[] }[], concurrency: number, get: Get): Promise<Pass> {
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

/** The asset step against several servers, each twice in mirrored order; `onPass` hears each pass begin and end. */
export async function assetPhase(servers: { name: string; machines: { ip: string; urls: string[] }[] }[], concurrency: number, get: Get, onPass?: (server: string, phase: 'begin' | 'end') => void | Promise<void>): Promise<PassSummary[]> {
  const machines = new Map(servers.map((s) => [s.name, s.machines]));
  const passes = await mirrored([...machines.keys()], (name) => assetPass(machines.get(name)!, concurrency, get), onPass);
  return [...passes].map(([name, ps]) => pooled(name, ps));
}
