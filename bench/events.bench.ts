// Talos event sink: what each event costs heph's main thread, the thread every boot request also needs.
//   npm run bench -- events [--events 4000] [--rounds 2]
// One heph on loopback; a separate process (bench/events-client.ts) publishes a Talos install-and-boot event mix
// (test/helpers/talos-events.ts, encoded by protoc) to a machine heph knows by the sender's address, as Talos does:
// one unary call at a time per session, every event id new. Scenarios: one session alone (one machine reporting),
// 20 and 200 sessions at once (a rack installing). heph's main-thread CPU comes from /proc/<pid>/task/<pid>/stat.
// No peer publishes a Talos event sink to compare with (Omni and Sidero Metal take events over SideroLink), so
// there is no ratio here: the figure is heph's own, to watch as the events path changes.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnHeph, tempDir } from '../test/helpers/heph.ts';
import { BOOT_RUN, eventRequest, INSTALL_RUN, xids } from '../test/helpers/talos-events.ts';
import { cleanupOnSignal, median, procUsage, table } from './lib.ts';

const { values: f } = parseArgs({ options: { events: { type: 'string' }, rounds: { type: 'string' } } });
const EVENTS = Number(f.events ?? 4000);
const ROUNDS = Number(f.rounds ?? 2);
const SCENARIOS = [1, 20, 200];
const tmp = tempDir('heph-events-');
let heph: Awaited<ReturnType<typeof spawnHeph>> | undefined;
const cleanup = cleanupOnSignal(async () => {
  await heph?.stop();
  tmp.remove();
});
try {
  heph = await spawnHeph({
    dataDir: join(tmp.path, 'data'),
    log: { level: 'info' },
    network: { advertiseAddress: '127.0.0.1' },
    http: { listen: '127.0.0.1', port: 0 },
    grpc: { listen: '127.0.0.1', port: 0 },
    kmsg: { listen: '127.0.0.1', port: 0 },
  });
  const up = heph.logs.find((l) => l.msg === 'heph is up') as { services: Record<string, { listening?: Record<string, string> }> };
  const http = up.services.http?.listening?.tcp;
  const grpcAt = up.services.events?.listening?.grpc;
  if (!http || !grpcAt) throw new Error(`heph did not say where it listens: ${JSON.stringify(up.services)}`);
  // The machine the events belong to: known by 127.0.0.1, the address the client sends from.
  const r = await fetch(`http://${http}/ipxe?mac=52-54-00-00-00-01&arch=x86_64&platform=efi`);
  if (!r.ok) throw new Error(`/ipxe answered ${r.status}`);
  const pid = heph.proc.pid!;

  // protoc is slow to run per event: each step is encoded once with a placeholder id, which is then swapped.
  const steps = [...INSTALL_RUN, ...BOOT_RUN];
  const placeholder = 'x'.repeat(20);
  const encoded = steps.map((s) => eventRequest(s, placeholder).toString('hex'));
  const hexOf = (s: string): string => Buffer.from(s).toString('hex');
  let run = 0;
  const requests = (): string => {
    const file = join(tmp.path, `requests-${++run}.json`);
    const ids = xids(EVENTS, 100_000 + run);
    writeFileSync(file, JSON.stringify(ids.map((id, i) => encoded[i % encoded.length]!.replace(hexOf(placeholder), hexOf(id)))));
    return file;
  };
  const publish = (sessions: number, file: string): Promise<number> =>
    new Promise((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'events-client.ts'), grpcAt, String(sessions), file], (err, stdout, stderr) =>
        err ? reject(new Error(`events client failed: ${stderr || err.message}`)) : resolve(Number(stdout.trim())),
      ),
    );

  console.log(`Talos events: ${EVENTS} per scenario (a ${steps.length}-event install and boot, repeated), every id new; ${ROUNDS} rounds`);
  await publish(20, requests()); // warm-up: JIT, prepared statements
  const rows: Record<string, string>[] = [];
  for (const sessions of SCENARIOS) {
    const main: number[] = [];
    const all: number[] = [];
    const rate: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const file = requests();
      const m0 = procUsage(pid, pid).cpuSeconds;
      const p0 = procUsage(pid).cpuSeconds;
      const ms = await publish(sessions, file);
      main.push(((procUsage(pid, pid).cpuSeconds - m0) * 1e6) / EVENTS);
      all.push(((procUsage(pid).cpuSeconds - p0) * 1e6) / EVENTS);
      rate.push(EVENTS / (ms / 1000));
    }
    rows.push({
      'sessions at once': String(sessions),
      'events/s': median(rate).toFixed(0),
      'main-thread µs per event': median(main).toFixed(0),
      'heph CPU µs per event': median(all).toFixed(0),
      'main-thread µs per round': main.map((x) => x.toFixed(0)).join(', '),
    });
  }
  console.log(table(rows));
  const kept = await (await fetch(`http://${http}/metrics`)).text();
  const total = /^heph_talos_events_total\{[^}]*\} (\d+)$/gm;
  let n = 0;
  for (const m of kept.matchAll(total)) n += Number(m[1]);
  const expected = EVENTS * (1 + SCENARIOS.length * ROUNDS);
  console.log(`events kept by heph: ${n} of ${expected}${n === expected ? '' : ' (MISSING EVENTS)'}`);
  if (n !== expected) process.exitCode = 1;
} finally {
  await cleanup();
}
