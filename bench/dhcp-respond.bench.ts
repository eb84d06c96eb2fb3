// The DHCP data plane's CPU per packet, without sockets: what the worker does per datagram (respond() into a send
// slot + its outcome record) on each warm-up request shape, and what the main thread does per record it gets.
// Single-threaded and short; judge A/B runs by µs per packet, and quote the load average with it.
//   npm run bench -- dhcp-respond [rounds]      (default 3 timed rounds of the rows that matter: relayed DISCOVER,
//                                               the main thread's records, an admitted sighting)
import { loadavg } from 'node:os';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { Intake } from '../src/dhcp/intake.ts';
import { OutcomeWriter, outcomeCode } from '../src/dhcp/outcome-log.ts';
import { RejectionSet, respondConfig } from '../src/dhcp/policy.ts';
import { respond } from '../src/dhcp/respond.ts';
import { dhcpSettings } from '../src/dhcp/settings.ts';
import { Sightings } from '../src/dhcp/sightings.ts';
import { warmupRequests } from '../src/dhcp/warmup.ts';
import { openInventory } from '../src/inventory/db.ts';
import { Machines } from '../src/inventory/machines.ts';
import { Timeline } from '../src/inventory/timeline.ts';
import { WriteBehind } from '../src/inventory/writebehind.ts';
import { createLogger } from '../src/log.ts';
import { tempDir } from '../test/helpers/heph.ts';
import { table } from './lib.ts';

const rounds = Number(process.argv[2] ?? 3);
const rejections = new RejectionSet();
const cfg = respondConfig(
  {
    server: '10.88.0.1',
    httpPort: 8080,
    binaries: { bios: 'undionly.kpxe', x86_64: 'ipxe.efi' },
    option43: dhcpSettings.shape.option43.default,
    relays: ['192.0.2.1/32'],
    relayPort: 67,
  },
  () => rejections,
);
const NAMES = ['OVMF PXE DISCOVER', 'BIOS PXE DISCOVER', 'iPXE DISCOVER', 'HTTP Boot DISCOVER', 'relayed OVMF DISCOVER', '4011 REQUEST', 'not PXE', 'malformed (100 B)'];

/**
 * CPU µs per call of `f` over n calls (the process's CPU time: the machine is shared, and wall time would count
 * the time other processes had the core), and wall µs.
 */
function time(n: number, f: (i: number) => void): { cpu: number; wall: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(i);
  const wall = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / n, wall };
}

/**
 * Heap bytes `f` allocates per call (the heap's growth between GCs, summed) and GC time per call, over a separate
 * run: the GC profiler slows what it watches, so timing runs go without it.
 */
function allocation(n: number, f: (i: number) => void): { bytes: number; gcUs: number } {
  const prof = new GCProfiler();
  prof.start();
  let used = getHeapStatistics().used_heap_size;
  for (let i = 0; i < n; i++) f(i);
  const end = getHeapStatistics().used_heap_size;
  let bytes = 0;
  let gcUs = 0;
  for (const g of prof.stop()?.statistics ?? []) {
    bytes += g.beforeGC.heapStatistics.usedHeapSize - used;
    used = g.afterGC.heapStatistics.usedHeapSize;
    gcUs += g.cost;
  }
  bytes += end - used;
  return { bytes: bytes / n, gcUs: gcUs / n };
}

// The worker's per-datagram work: respond() into a send slot, then the record for the main thread.
const into = Buffer.alloc(1500);
const log = new OutcomeWriter();
const worker = (w: ReturnType<typeof warmupRequests>[number]) => (i: number) => {
  // A new MAC per packet, as in a perfdhcp storm (bytes 32..33 of chaddr).
  if (w.bytes.length > 33) {
    w.bytes[33] = i & 0xff;
    w.bytes[32] = (i >> 8) & 0xff;
  }
  const o = respond(w.bytes, w.arrival, cfg, into);
  if (!log.add(0, w.arrival.via, outcomeCode(o), o.kind !== 'malformed' && o.client !== undefined, 0xc0000201, 67, w.bytes)) log.take();
};

/** The heap columns; `per` packets per call of the measured function. */
const heap = (a: { bytes: number; gcUs: number }, per = 1) => ({ 'heap B/packet': Math.round(a.bytes / per), 'GC µs/packet': (a.gcUs / per).toFixed(3) });

const warm = warmupRequests();
for (const w of warm) time(20_000, worker(w));

const rows: Record<string, string | number>[] = [];
const relayed: number[] = [];
for (const [k, w] of warm.entries()) {
  const matters = k === 4;
  const f = worker(w);
  for (let r = 0; r < (matters ? rounds : 1); r++) {
    const t = time(matters ? 300_000 : 100_000, f);
    if (matters) relayed.push(t.cpu);
    rows.push({ path: `worker: ${NAMES[k]}${matters ? ` (round ${r + 1})` : ''}`, 'CPU µs/packet': t.cpu, 'wall µs/packet': t.wall, ...(r === 0 ? heap(allocation(100_000, f)) : {}) });
  }
}

// The main thread's per-record work for one flush of a storm: every record a relayed OFFER to a new MAC (as
// perfdhcp sends), so past the sighting budget's burst each one is counted and dropped, the common case.
const dir = tempDir('heph-bench-dhcp-');
const { db } = openInventory(dir.path);
const writer = new WriteBehind(db, { tickMs: 60_000 });
const sightings = new Sightings({ writer, machines: new Machines(db), timeline: new Timeline(db, writer), log: createLogger({ log: { level: 'silent', format: 'json' } }) });
const intake = new Intake(sightings, () => false);
const relay = warm[4]!;
const flush = new OutcomeWriter();
const offer = outcomeCode({ kind: 'reply', type: 'offer' });
for (let i = 0; flush.add(0, 'dhcp', offer, true, 0xc0000201, 67, relay.bytes); i++) {
  relay.bytes[33] = i & 0xff;
  relay.bytes[32] = (i >> 8) & 0xff;
}
const perFlush = flush.count;
const { records, length } = flush.take();
const main = (): void => {
  intake.add(records, length, false, () => undefined);
  intake.reset();
};
for (let i = 0; i < 200; i++) main();
const mainRuns = 2000;
for (let r = 0; r < rounds; r++) {
  const t = time(mainRuns, main);
  rows.push({ path: `main: relayed OFFER records (round ${r + 1})`, 'CPU µs/packet': t.cpu / perFlush, 'wall µs/packet': t.wall / perFlush, ...(r === 0 ? heap(allocation(mainRuns, main), perFlush) : {}) });
}
// What each record the budget admits costs on top (at most ~100/s plus a burst by default): respond() again on its
// datagram, the sighting, and its share of the write-behind transaction that resolves it into a new machine.
const admitted = new Sightings({ writer, machines: new Machines(db), timeline: new Timeline(db, writer), log: createLogger({ log: { level: 'silent', format: 'json' } }) }, { perSecond: 1e9, burst: 1e9 });
// A new machine each time: a new MAC and a new UUID (all MACs under one UUID would be one machine with ever more
// NICs, and resolve() grows with them: a perfdhcp artefact, not a boot storm).
const uuidAt = relay.bytes.indexOf(Buffer.from([97, 17, 0])) + 3;
let fresh = 0;
const sight = (): void => {
  fresh++;
  relay.bytes[31] = relay.bytes[uuidAt + 13] = (fresh >> 16) & 0xff;
  relay.bytes[32] = relay.bytes[uuidAt + 14] = (fresh >> 8) & 0xff;
  relay.bytes[33] = relay.bytes[uuidAt + 15] = fresh & 0xff;
  const o = respond(relay.bytes, relay.arrival, cfg);
  if (o.kind !== 'reply') throw new Error(`no reply: ${o.kind}`);
  admitted.record(o.client, 'dhcp.discover', `DISCOVER answered with a proxy OFFER: ${o.file}`, { data: { file: o.file, relay: o.giaddr } });
  if (fresh % 200 === 0) writer.flush();
};
for (let r = 0; r < rounds; r++) {
  const t = time(1000, sight);
  rows.push({ path: `main: admitted sighting, new machine (round ${r + 1})`, 'CPU µs/packet': t.cpu, 'wall µs/packet': t.wall });
}
writer.close();
db.close();
dir.remove();

console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(table(rows));
console.log(`relayed DISCOVER, worker: best ${Math.min(...relayed).toFixed(2)} CPU µs/packet, median ${[...relayed].sort((a, b) => a - b)[Math.floor(relayed.length / 2)]!.toFixed(2)}`);
