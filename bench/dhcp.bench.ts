// DISCOVER → OFFER: heph vs dnsmasq (proxy mode), same namespaces, same load, same run.
//   npm run bench -- dhcp [--rate 30000] [--seconds 4] [--latency-rates 1000,5000]
// Topology: bsrv eth0 10.88.0.1/24 ── bcli eth0 10.88.0.2/24. ISC perfdhcp in bcli acts as a relay (giaddr
// 10.88.0.2, unicast to 10.88.0.1:67) sending OVMF-PXE-shaped options (60, 93, 94). Two measurements per
// server: (1) throughput: perfdhcp's "Rate" (OFFERs received per second) and drop ratio at --rate; (2) latency:
// at each of --latency-rates (2 s each), tshark records bcli's veth and each DISCOVER is paired with its OFFER by xid: the
// p50/p99 is request-on-the-wire → reply-on-the-wire, the same vantage point for both servers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { spawnHeph } from '../test/helpers/heph.ts';
import { Netns, vethPair } from '../test/helpers/netns.ts';
import { tsharkStarted } from '../test/helpers/system.ts';
import { procUsage, summarize } from './lib.ts';

const { values: flags } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' }, 'latency-rates': { type: 'string' } } });
const RATE = Number(flags.rate ?? 30000);
const SECONDS = Number(flags.seconds ?? 4);
const LAT_RATES = (flags['latency-rates'] ?? '1000,5000').split(',').map(Number);
const PXE = ['-o', `60,${Buffer.from('PXEClient:Arch:00007:UNDI:003000').toString('hex')}`, '-o', '93,0007', '-o', '94,010300'];

interface Latency {
  rate: number;
  p50: number;
  p99: number;
  latDropPct: number;
}

interface Result {
  /** CPU time (user + system) the server spent per OFFER during the throughput run: robust to a busy machine. */
  cpuPerOffer: number;
  rate: number;
  sent: number;
  received: number;
  dropPct: number;
  latency: Latency[];
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

async function latency(cli: Netns, dir: string, name: string, rate: number): Promise<Latency> {
  const file = join(dir, `${name}-${rate}.pcap`);
  const cap = cli.spawn('tshark', ['-i', 'eth0', '-n', '-q', '-f', 'udp port 67', '-w', file]);
  await tsharkStarted(cap);
  await perfdhcp(cli, rate, 2);
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
  const { p50, p99 } = summarize(lat);
  return { rate, p50, p99, latDropPct: sent.size ? (100 * (sent.size - lat.length)) / sent.size : NaN };
}


const cpuMicros = (pid: number): number => procUsage(pid).cpuSeconds * 1e6;

async function measure(cli: Netns, dir: string, name: string, pid: number): Promise<Result> {
  await perfdhcp(cli, 100, 1); // warm-up: ARP, JIT
  const lat: Latency[] = [];
  for (const r of LAT_RATES) lat.push(await latency(cli, dir, name, r));
  const c0 = cpuMicros(pid);
  const thr = await perfdhcp(cli, RATE, SECONDS);
  const cpuPerOffer = (cpuMicros(pid) - c0) / thr.received;
  return { ...thr, cpuPerOffer, latency: lat };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'heph-bench-dhcp-'));
  const srv = Netns.create('bsrv');
  const cli = Netns.create('bcli');
  try {
    vethPair(srv, 'eth0', cli, 'eth0');
    srv.addr('eth0', '10.88.0.1/24');
    cli.addr('eth0', '10.88.0.2/24');

    const heph = await spawnHeph(
      { log: { level: 'info' }, network: { interfaces: ['eth0'] }, http: { listen: '10.88.0.1', port: 8080 }, dhcp: { enabled: true, relays: ['10.88.0.2/32'] } },
      { netns: srv },
    );
    let h: Result;
    try {
      h = await measure(cli, dir, 'heph', heph.proc.pid!);
    } finally {
      await heph.stop();
    }

    const conf = join(dir, 'dnsmasq.conf');
    writeFileSync(conf, ['port=0', 'interface=eth0', 'bind-interfaces', 'dhcp-range=10.88.0.0,proxy,255.255.255.0', 'pxe-service=X86-64_EFI,"heph",ipxe.efi', 'pxe-service=x86PC,"heph",undionly', 'log-facility=/dev/null', 'leasefile-ro', 'dhcp-leasefile=/dev/null'].join('\n'));
    const dnsmasq = srv.spawn('dnsmasq', ['--keep-in-foreground', `--conf-file=${conf}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`]);
    let d: Result;
    try {
      await sleep(1000);
      if (dnsmasq.exitCode !== null) throw new Error('dnsmasq exited at start');
      d = await measure(cli, dir, 'dnsmasq', dnsmasq.pid!);
    } finally {
      dnsmasq.kill('SIGTERM');
      await new Promise((r) => (dnsmasq.exitCode !== null ? r(null) : dnsmasq.once('exit', r)));
    }

    const f = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
    console.log(`DISCOVER→OFFER under perfdhcp relay load (OVMF PXE options, a new MAC per DISCOVER); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs`);
    console.log(`throughput: ${SECONDS} s at ${RATE}/s asked`);
    console.log('server   | offers/s | sent    | received | drops %  | CPU µs/offer');
    for (const [name, r] of [['heph', h], ['dnsmasq', d]] as const) {
      console.log(`${name.padEnd(8)} | ${f(r.rate, 0).padStart(8)} | ${String(r.sent).padStart(7)} | ${String(r.received).padStart(8)} | ${f(r.dropPct).padStart(8)} | ${f(r.cpuPerOffer, 1)}`);
    }
    console.log('latency, DISCOVER → OFFER on the wire (client-side capture), 2 s per rate');
    console.log('server   | rate/s | p50 ms  | p99 ms   | unanswered %');
    for (const [name, r] of [['heph', h], ['dnsmasq', d]] as const) {
      for (const l of r.latency) console.log(`${name.padEnd(8)} | ${String(l.rate).padStart(6)} | ${f(l.p50, 3).padStart(7)} | ${f(l.p99, 3).padStart(8)} | ${f(l.latDropPct)}`);
    }
    console.log(`ratio heph/dnsmasq throughput: ${f(h.rate / d.rate)}x (goal >= 1.0); CPU per offer dnsmasq/heph: ${f(d.cpuPerOffer / h.cpuPerOffer)}x (less sensitive to a busy machine than the rates)`);
    for (const [i, l] of h.latency.entries()) {
      console.log(`ratio heph/dnsmasq p99 at ${l.rate}/s: ${f(l.p99 / d.latency[i]!.p99)}x; heph p99 ${f(l.p99, 3)} ms (goal < 5 ms)`);
    }
  } finally {
    srv.destroy();
    cli.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
