// Shared knobs for the fuzz targets: a fixed seed per target (a failure reproduces exactly) and a run count sized
// for CI (each target well under 30 s on the 2-core CI machine). FUZZ_SCALE=10 runs ten times as many cases,
// FUZZ_SEED picks another seed for a deeper local session.
// Targets: fuzz-tftp, fuzz-ipxe, fuzz-configserve, fuzz-api, fuzz-events. The DHCP decoder has its own 120k-case
// run through the whole receive path in dhcp-fuzz.test.ts (the dhcp module's), so it is not repeated here.
export const SCALE = Number(process.env.FUZZ_SCALE ?? 1);

export function params(seed: number, runs: number): { seed: number; numRuns: number } {
  return { seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) + seed : seed, numRuns: Math.max(1, Math.round(runs * SCALE)) };
}
