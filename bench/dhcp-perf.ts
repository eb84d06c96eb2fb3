// DISCOVER → OFFER: heph vs dnsmasq (proxy mode), same namespaces, same load, same run.
//   node --import tsx bench/dhcp-perf.ts [--rate 30000] [--seconds 4] [--latency-rate 5000]
// Topology: bsrv eth0 10.88.0.1/24 ── bcli eth0 10.88.0.2/24. ISC perfdhcp in bcli acts as a relay (giaddr
// 10.88.0.2, unicast to 10.88.0.1:67) sending OVMF-PXE-shaped options (60, 93, 94). Two measurements per
// server: (1) throughput: perfdhcp's "Rate" (OFFERs received per second) and drop ratio at --rate; (2) latency:
// at --latency-rate, tshark records bcli's veth and each DISCOVER is paired with its OFFER by xid: the
// p50/p99 is request-on-the-wire → reply-on-the-wire, the same vantage point for both servers.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { spawnHeph } from '../test/helpers/heph.ts';
import { Netns, vethPair } from '../test/helpers/netns.ts';

const { values: flags } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' }, 'latency-rate': { type: 'string' } } });
const RATE = Number(flags.rate ?? 30000);
const SECONDS = Number(flags.seconds ?? 4);
const LAT_RATE = Number(flags['latency-rate'] ?? 5000);
const PXE = ['-o', `60,${Buffer.from('PXEClient:Arch:00007:UNDI:003000').toString('hex')}`, '-o', '93,0007', '-o', '94,010300'];

interface Result {
  rate: number;
  sent: number;
  received: number;
  dropPct: number;
  p50: number;
  p99: number;
  latDropPct: number;
}

function perfdhcp(cli: Netns, rate: number, seconds: number): { rate: number; sent: number; received: number; dropPct: number } {
  const out = cli.run('sh', ['-c', `perfdhcp -4 -l eth0 -r ${rate} -p ${seconds} -i -R 100000 ${PXE.join(' ')} 10.88.0.1 2>&1; true`], { timeout: (seconds + 30) * 1000 });
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  return { rate: num(/Rate: ([\d.]+) DISCOVER-OFFER/), sent: num(/sent packets: (\d+)/), received: num(/received packets: (\d+)/), dropPct: num(/drops ratio: ([\d.]+) ?%/) };
}

async function latency(cli: Netns, dir: string, name: string): Promise<{ p50: number; p99: number; latDropPct: number }> {
  const file = join(dir, `${name}.pcap`);
  const cap = cli.spawn('tshark', ['-i', 'eth0', '-n', '-q', '-f', 'udp port 67', '-w', file]);
  await started(cap);
  perfdhcp(cli, LAT_RATE, 2);
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
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { p50: q(0.5), p99: q(0.99), latDropPct: sent.size ? (100 * (sent.size - lat.length)) / sent.size : NaN };
}

async function started(p: ChildProcess): Promise<void> {
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tshark did not start: ${err}`)), 15_000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Capturing on')) (clearTimeout(t), resolve());
    });
  });
}

async function measure(cli: Netns, dir: string, name: string): Promise<Result> {
  perfdhcp(cli, 100, 1); // warm-up: ARP, JIT
  const lat = await latency(cli, dir, name);
  const thr = perfdhcp(cli, RATE, SECONDS);
  return { ...thr, ...lat };
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
      h = await measure(cli, dir, 'heph');
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
      d = await measure(cli, dir, 'dnsmasq');
    } finally {
      dnsmasq.kill('SIGTERM');
      await new Promise((r) => (dnsmasq.exitCode !== null ? r(null) : dnsmasq.once('exit', r)));
    }

    const f = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
    console.log(`DISCOVER→OFFER, perfdhcp relay load, ${SECONDS} s at ${RATE}/s asked; latency at ${LAT_RATE}/s (wire, client side)`);
    console.log('server   | offers/s | sent    | received | drops %  | p50 ms | p99 ms | drops % @latency-rate');
    for (const [name, r] of [['heph', h], ['dnsmasq', d]] as const) {
      console.log(`${name.padEnd(8)} | ${f(r.rate, 0).padStart(8)} | ${String(r.sent).padStart(7)} | ${String(r.received).padStart(8)} | ${f(r.dropPct).padStart(8)} | ${f(r.p50, 3).padStart(6)} | ${f(r.p99, 3).padStart(6)} | ${f(r.latDropPct)}`);
    }
    console.log(`ratio heph/dnsmasq: throughput ${f(h.rate / d.rate)}x (goal >= 1.0), p99 latency ${f(h.p99 / d.p99)}x; heph p99 ${f(h.p99, 3)} ms (goal < 5 ms)`);
  } finally {
    srv.destroy();
    cli.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
