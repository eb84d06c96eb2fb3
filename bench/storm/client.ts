// The storm's client side, run as its own process inside the client namespace (a process cannot switch its own
// network namespace): `ip netns exec <cli> node --import tsx bench/storm/client.ts '<json StormRequest>'`.
// Writes one JSON line per event to stdout: progress (each machine attempt), storm (all results), assets.
import { assetPhase } from './assets.ts';
import { RELAY_IP } from './lab.ts';
import { Relay, type Trace } from './machine.ts';
import { runStorm, stormEvents, type MachineResult } from './run.ts';

export interface StormRequest {
  n: number;
  concurrency: number;
  server: string;
  httpPort: number;
  grpcPort: number;
  /** The x86-64 UEFI binary heph offers (ipxe.efi unless the run chose another). */
  bootFile?: string;
  runId: string;
  retryForMs?: number;
  progress?: boolean;
  /** After the storm: the asset step alone against heph and against each of these base URLs (e.g. nginx), twice each in mirrored order. */
  assets?: { concurrency: number; references: { name: string; base: string; files: string[] }[] };
}

export type StormLine =
  | { kind: 'progress'; ip: string; done: boolean; configPath?: string; configServed?: boolean; failures: number }
  | { kind: 'storm'; wallS: number; results: MachineResult[] }
  | { kind: 'assets'; server: string; bytesPerS: number; failures: number; p50: number; p99: number };

const emit = (l: StormLine): void => void process.stdout.write(`${JSON.stringify(l)}\n`);

const req = JSON.parse(process.argv[2] ?? '{}') as StormRequest;
const relay = await Relay.open(RELAY_IP, req.server);
try {
  const t0 = performance.now();
  const results = await runStorm({
    n: req.n,
    concurrency: req.concurrency,
    relay,
    target: { server: req.server, httpPort: req.httpPort, grpcPort: req.grpcPort, bootFile: req.bootFile ?? 'ipxe.efi', events: stormEvents() },
    runId: req.runId,
    ...(req.retryForMs === undefined ? {} : { retryUntil: Date.now() + req.retryForMs }),
    ...(req.progress ? { onProgress: (r: MachineResult) => emit({ kind: 'progress', ip: r.m.ip, done: r.done, ...pick(r.trace), failures: r.failures.length }) } : {}),
  });
  emit({ kind: 'storm', wallS: (performance.now() - t0) / 1000, results });
  if (req.assets) {
    const ok = results.filter((r) => r.done);
    const base = `http://${req.server}:${req.httpPort}`;
    const servers = [
      { name: 'heph', machines: ok.map((r) => ({ ip: r.m.ip, urls: [`${base}${r.trace.kernelPath}`, `${base}${r.trace.initrdPath}`] })) },
      ...req.assets.references.map((ref) => ({ name: ref.name, machines: ok.map((x) => ({ ip: x.m.ip, urls: ref.files.map((f) => `${ref.base}/${f}`) })) })),
    ];
    for (const r of await assetPhase(servers, req.assets.concurrency)) emit({ kind: 'assets', ...r });
  }
} finally {
  relay.close();
}

function pick(t: Trace): { configPath?: string; configServed?: boolean } {
  return { ...(t.configPath ? { configPath: t.configPath } : {}), ...(t.configServed ? { configServed: true } : {}) };
}
