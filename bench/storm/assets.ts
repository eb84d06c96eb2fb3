import { summarize } from '../lib.ts';
import { httpGet } from './machine.ts';

/** Every machine downloads its URLs in turn, `concurrency` machines at a time: bytes/s over the whole phase. */
export async function assetPhase(machines: { ip: string; urls: string[] }[], concurrency: number): Promise<{ bytesPerS: number; failures: number; p50: number; p99: number }> {
  let next = 0;
  let bytes = 0;
  let failures = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, machines.length) }, async () => {
      for (let i = next++; i < machines.length; i = next++) {
        const m = machines[i]!;
        for (const url of m.urls) {
          const s = performance.now();
          try {
            const r = await httpGet(m.ip, url, { timeoutMs: 300_000 });
            if (r.status === 200) bytes += r.bytes;
            else failures++;
            lat.push(performance.now() - s);
          } catch {
            failures++;
          }
        }
      }
    }),
  );
  const s = summarize(lat);
  return { bytesPerS: bytes / ((performance.now() - t0) / 1000), failures, p50: s.p50, p99: s.p99 };
}
