// DISCOVER → OFFER: heph vs dnsmasq (proxy mode), same topology, same load, same run.
//   npm run bench -- dhcp [--rate 30000] [--seconds 4] [--rounds 3] [--latency-rates 1000,5000]
// Topology, once per server (two identical labs, so both servers run all along and the rounds can alternate):
// <srv> eth0 10.88.0.1/24 ── <cli> eth0 10.88.0.2/24. ISC perfdhcp in the client namespace acts as a relay (giaddr
// 10.88.0.2, unicast to 10.88.0.1:67) sending OVMF-PXE-shaped options (60, 93, 94). Each round measures both
// servers, in alternating order: (1) throughput: perfdhcp's "Rate" (OFFERs received per second) and drop ratio at
// --rate; (2) latency: at each of --latency-rates (2 s each), tshark records the client's veth and each DISCOVER is
// paired with its OFFER by xid, so p50/p99 are request-on-the-wire → reply-on-the-wire, the same vantage point for
// both servers. Rates are reported per round and as the median; latency samples are pooled over the rounds.
// perfdhcp shares the 2 CPUs with the server, so at --rate the client is usually the bottleneck and a server's CPU
// per offer decides how much is left for it: that figure is printed too.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { spawnHeph } from '../test/helpers/heph.ts';
import { Netns, vethPair } from '../test/helpers/netns.ts';
import { tsharkStarted } from '../test/helpers/system.ts';
import { cleanupOnSignal, median, procUsage, summarize, watchSteal } from './lib.ts';

const { values: flags } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' }, rounds: { type: 'string' }, 'latency-rates': { type: 'string' } } });
const RATE = Number(flags.rate ?? 30000);
const SECONDS = Number(flags.seconds ?? 4);
const ROUNDS = Math.max(1, Number(flags.rounds ?? 3));
const LAT_RATES = (flags['latency-rates'] ?? '1000,5000').split(',').map(Number);
const PXE = ['-o', `60,${Buffer.from('PXEClient:Arch:00007:UNDI:003000').toString('hex')}`, '-o', '93,0007', '-o', '94,010300'];

interface Throughput {
  /** CPU time (user + system) the server spent per OFFER during the throughput run: robust to a busy machine. */
  cpuPerOffer: number;
  rate: number;
  sent: number;
  received: number;
  dropPct: number;
}

interface LatencySamples {
  ms: number[];
  sent: number;
  /** p99 of each round's run, in ms. */
  p99s: number[];
  /** Host steal during each round's run, in percent of CPU time. */
  steal: number[];
}

/**
 * perfdhcp in the client namespace, run asynchronously: heph's log pipe goes to this process, and a synchronous
 * child would stop us draining it, so heph would block on its own log writes and look slow.
 */
async function perfdhcp(cli: Netns, rate: number, seconds: number): Promise<{ rate: number; sent: number; received: number; dropPct: number }> {
  const p = cli.spawn('perfdhcp', ['-4', '-l', 'eth0', '-r', String(rate), '-p', String(seconds), '-i', '-R', '100000', ...PXE, '10.88.0.1']);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // perfdhcp exits non-zero whenever it saw drops; its report is what counts.
  await new Promise((r) => p.once('exit', r));
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  return { rate: num(/Rate: ([\d.]+) DISCOVER-OFFER/), sent: num(/sent packets: (\d+)/), received: num(/received packets: (\d+)/), dropPct: num(/drops ratio: ([\d.]+) ?%/) };
}

async function latency(cli: Netns, dir: string, name: string, rate: number): Promise<LatencySamples> {
  const file = join(dir, `${name}-${rate}.pcap`);
  const cap = cli.spawn('tshark', ['-i', 'eth0', '-n', '-q', '-f', 'udp port 67', '-w', file]);
  await tsharkStarted(cap);
  const steal = watchSteal();
  await perfdhcp(cli, rate, 2);
  const stolen = steal();
  await sleep(1000);
  cap.kill('SIGINT');
  await new Promise((r) => cap.once('exit', r));
  const rows = cli.run('tshark', ['-r', file, '-n', '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'dhcp.id', '-e', 'dhcp.option.dhcp'], { timeout: 120_000 }).trim().split('\n');
  const sent = new Map<string, number>();
  const lat: number[] = [];
  for (const r of rows) {
    const [t, xid, type] = r.split('\t');
    if (type === '1') sent.set(xid!, Number(t));
    else if (type === '2' && sent.has(xid!)) lat.push((Number(t) - sent.get(xid!)!) * 1000);
  }
  rmSync(file);
  return { ms: lat, sent: sent.size, p99s: [summarize(lat).p99], steal: [stolen] };
}


const cpuMicros = (pid: number): number => procUsage(pid).cpuSeconds * 1e6;

async function throughput(cli: Netns, pid: number): Promise<Throughput> {
  const c0 = cpuMicros(pid);
  const thr = await perfdhcp(cli, RATE, SECONDS);
  return { ...thr, cpuPerOffer: (cpuMicros(pid) - c0) / thr.received };
}

interface Lab {
  name: 'heph' | 'dnsmasq';
  srv: Netns;
  cli: Netns;
  pid: number;
  rounds: Throughput[];
  latency: Map<number, LatencySamples>;
}

function lab(name: Lab['name']): Lab {
  const srv = Netns.create(`b${name[0]}srv`);
  const cli = Netns.create(`b${name[0]}cli`);
  try {
    vethPair(srv, 'eth0', cli, 'eth0');
    srv.addr('eth0', '10.88.0.1/24');
    cli.addr('eth0', '10.88.0.2/24');
  } catch (err) {
    srv.destroy();
    cli.destroy();
    throw err;
  }
  return { name, srv, cli, pid: 0, rounds: [], latency: new Map() };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'heph-bench-dhcp-'));
  const labs: Lab[] = [];
  let heph: Awaited<ReturnType<typeof spawnHeph>> | undefined;
  let dnsmasq: ChildProcess | undefined;
  const cleanup = cleanupOnSignal(async () => {
    dnsmasq?.kill('SIGTERM');
    if (dnsmasq && dnsmasq.exitCode === null && dnsmasq.signalCode === null) await new Promise((r) => dnsmasq!.once('exit', r));
    await heph?.stop();
    for (const l of labs) {
      l.srv.destroy();
      l.cli.destroy();
    }
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    const h = lab('heph');
    labs.push(h);
    const d = lab('dnsmasq');
    labs.push(d);
    // The DHCP thread at heph's priority, as dnsmasq and perfdhcp run: this compares the two servers' work per
    // packet. (Raised, it preempted perfdhcp and cost 20–40 % of the throughput; see the README.)
    heph = await spawnHeph(
      { log: { level: 'info' }, network: { interfaces: ['eth0'] }, http: { listen: '10.88.0.1', port: 8080 }, dhcp: { enabled: true, relays: ['10.88.0.2/32'] }, threads: { packetPriority: 0 } },
      { netns: h.srv },
    );
    h.pid = heph.proc.pid!;
    const conf = join(dir, 'dnsmasq.conf');
    writeFileSync(conf, ['port=0', 'interface=eth0', 'bind-interfaces', 'dhcp-range=10.88.0.0,proxy,255.255.255.0', 'pxe-service=X86-64_EFI,"heph",ipxe.efi', 'pxe-service=x86PC,"heph",undionly', 'log-facility=/dev/null', 'leasefile-ro', 'dhcp-leasefile=/dev/null'].join('\n'));
    dnsmasq = d.srv.spawn('dnsmasq', ['--keep-in-foreground', `--conf-file=${conf}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`]);
    await sleep(1000);
    if (dnsmasq.exitCode !== null) throw new Error('dnsmasq exited at start');
    d.pid = dnsmasq.pid!;

    for (const l of labs) await perfdhcp(l.cli, 100, 1); // warm-up: ARP, JIT
    for (let r = 0; r < ROUNDS; r++) {
      // Alternating order, so that neither server always runs right after the other's storm.
      const order = r % 2 === 0 ? labs : [...labs].reverse();
      for (const rate of LAT_RATES) {
        for (const l of order) {
          const got = await latency(l.cli, dir, l.name, rate);
          const pooled = l.latency.get(rate) ?? { ms: [], sent: 0, p99s: [], steal: [] };
          l.latency.set(rate, { ms: pooled.ms.concat(got.ms), sent: pooled.sent + got.sent, p99s: pooled.p99s.concat(got.p99s), steal: pooled.steal.concat(got.steal) });
        }
      }
      for (const l of order) l.rounds.push(await throughput(l.cli, l.pid));
    }

    const f = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
    console.log(`DISCOVER→OFFER under perfdhcp relay load (OVMF PXE options, a new MAC per DISCOVER); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs`);
    console.log(`throughput: ${ROUNDS} rounds of ${SECONDS} s at ${RATE}/s asked, servers alternating`);
    console.log('server   | round | offers/s | sent    | received | drops %  | CPU µs/offer');
    for (const l of labs) {
      l.rounds.forEach((r, i) => console.log(`${l.name.padEnd(8)} | ${String(i + 1).padStart(5)} | ${f(r.rate, 0).padStart(8)} | ${String(r.sent).padStart(7)} | ${String(r.received).padStart(8)} | ${f(r.dropPct).padStart(8)} | ${f(r.cpuPerOffer, 1)}`));
    }
    const med = (l: Lab, k: 'rate' | 'cpuPerOffer'): number => median(l.rounds.map((r) => r[k]));
    console.log(`latency, DISCOVER → OFFER on the wire (client-side capture), 2 s per rate per round, pooled over ${ROUNDS} rounds`);
    console.log('server   | rate/s | samples | p50 ms  | p99 ms   | unanswered % | p99 ms per round | host steal % per round');
    const lat = (l: Lab, rate: number): { p50: number; p99: number; n: number; unanswered: number; p99s: number[]; steal: number[] } => {
      const x = l.latency.get(rate)!;
      return { ...summarize(x.ms), unanswered: x.sent ? (100 * (x.sent - x.ms.length)) / x.sent : NaN, p99s: x.p99s, steal: x.steal };
    };
    for (const l of labs) {
      for (const rate of LAT_RATES) {
        const x = lat(l, rate);
        console.log(`${l.name.padEnd(8)} | ${String(rate).padStart(6)} | ${String(x.n).padStart(7)} | ${f(x.p50, 3).padStart(7)} | ${f(x.p99, 3).padStart(8)} | ${f(x.unanswered).padStart(12)} | ${x.p99s.map((p) => f(p, 1)).join(', ').padEnd(16)} | ${x.steal.map((p) => f(p, 1)).join(', ')}`);
      }
    }
    console.log(`ratio heph/dnsmasq throughput (medians): ${f(med(h, 'rate') / med(d, 'rate'))}x (goal >= 1.0), per round ${h.rounds.map((r, i) => f(r.rate / d.rounds[i]!.rate)).join(', ')}; CPU per offer dnsmasq/heph: ${f(med(d, 'cpuPerOffer') / med(h, 'cpuPerOffer'))}x`);
    for (const rate of LAT_RATES) {
      const hp = lat(h, rate).p99;
      console.log(`ratio heph/dnsmasq p99 at ${rate}/s: ${f(hp / lat(d, rate).p99)}x; heph p99 ${f(hp, 3)} ms (goal < 5 ms)`);
    }
  } finally {
    await cleanup();
  }
}

await main();
