// TFTP throughput: heph against dnsmasq, same files, same clients, same run, inside a throwaway network namespace
// (dnsmasq can only listen on port 69). Prints medians, best runs and ratios, and the load average.
//
//   npm run bench -- tftp [--runs N] [--no-pin]      (root: creates and removes a netns)
//
// Placement: every client runs on CPU 0 and both servers (all their threads) on CPU 1, as if on two machines.
// Unpinned, the scheduler sometimes puts a lock-step client and its server on one CPU (a round trip is then a
// context switch, ~14 us) and sometimes on two (a cross-CPU wake-up each way, ~80 us on this VM), and which one a
// run got decided the ratios more than the servers did (0.4x to 2.4x between runs of the same code).
//
// Configurations: curl and atftp in lock-step at blksize 1468 (what iPXE and EDK2 do), atftp with windowsize 16
// (RFC 7440; dnsmasq ignores the option, so its column stays lock-step), and 50 concurrent 1 MiB curl fetches.
// Then the same with our own client (bench/tftp-client.c, compiled here with the system cc): it receives with
// recvmmsg, fetches the file K times in one process and times each fetch, so neither client start-up nor a slow
// client hides the servers' difference; every fetch's byte count and hash are checked against the file.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanupOnSignal, median, procUsage } from './lib.ts';
import { buildClient, clientArgs, parseCpu, parseFetches, verifyFetches } from './tftp-client.ts';
import { spawnHeph, tempDir } from '../test/helpers/heph.ts';
import { Netns } from '../test/helpers/netns.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'no-pin': { type: 'boolean', default: false } } });
const RUNS = Math.max(1, Number(values.runs));
const PIN = !values['no-pin'] && availableParallelism() >= 2;
/** Whether client commands go to CPU 0 (the 50-concurrent rows run unpinned, see there). */
let pinClients = PIN;
const onClientCpu = (cmd: string, args: string[]): [string, string[]] => (pinClients ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args]);
/** Every thread of each server onto `cpus` (threads started later inherit the mask). */
const placeServers = (pids: number[], cpus: string): void => {
  for (const pid of pids) execFileSync('taskset', ['-a', '-c', '-p', cpus, String(pid)], { stdio: 'ignore' });
};
const HEPH_PORT = 6969;
const MiB = 1 << 20;

const dir = tempDir('heph-tftp-bench-');
chmodSync(dir.path, 0o755); // dnsmasq reads as nobody
const files = { '1m.bin': randomBytes(MiB), '64m.bin': randomBytes(64 * MiB) };
for (const [name, data] of Object.entries(files)) {
  writeFileSync(join(dir.path, name), data);
  chmodSync(join(dir.path, name), 0o644);
}

const ns = Netns.create('tftpbench');
const children: ChildProcess[] = [];
const cleanup = cleanupOnSignal(async () => {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of running) c.kill('SIGTERM');
  await Promise.all(running.map((c) => once(c, 'exit')));
  ns.destroy();
  dir.remove();
});

/** Server CPU seconds (user+system) from /proc. */
const cpu = (pid: number): number => procUsage(pid).cpuSeconds;

function sh(cmd: string, args: string[], okCodes = [0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = ns.spawn(...onClientCpu(cmd, args), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (okCodes.includes(code ?? -1) ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

/** Runs a command in the namespace and returns its stdout. */
function shOut(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = ns.spawn(...onClientCpu(cmd, args), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

type Server = { name: 'heph' | 'dnsmasq'; port: number; pid: number };

const load0 = loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const dnsmasq = ns.spawn('dnsmasq', ['--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${dir.path}`, '--listen-address=127.0.0.1', '--bind-interfaces', '-d'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(dnsmasq);
  // dnsmasq -d logs a line per transfer to stderr: unread, the pipe fills and dnsmasq blocks on its next write.
  dnsmasq.stderr!.resume();
  const heph = await spawnHeph(
    {
      log: { level: 'info' },
      http: { listen: '127.0.0.1', port: 0 },
      ipxe: { dir: dir.path, bios: '1m.bin', x86_64: '64m.bin' },
      tftp: { enabled: true, port: HEPH_PORT, addresses: ['127.0.0.1'], maxTransfersPerClient: 64 },
      // At heph's priority, as dnsmasq and the clients run: this compares the two servers' work per transfer.
      threads: { packetPriority: 0 },
    },
    { netns: ns, waitUp: false },
  );
  children.push(heph.proc);
  // Wait until both answer.
  const servers: Server[] = [
    { name: 'heph', port: HEPH_PORT, pid: heph.proc.pid! },
    { name: 'dnsmasq', port: 69, pid: dnsmasq.pid! },
  ];
  for (let i = 0; ; i++) {
    try {
      for (const s of servers) await sh('curl', ['-sS', '-o', '/dev/null', `tftp://127.0.0.1:${s.port}/1m.bin`]);
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // Every thread each server has once it answers (heph's workers start before that).
  if (PIN) placeServers(servers.map((s) => s.pid), '1');

  const out = join(dir.path, 'out');
  const clients: Record<string, (s: Server, file: string, dest: string) => [string, string[]]> = {
    'curl lock-step blksize 1468': (s, f, d) => ['curl', ['-sS', '--tftp-blksize', '1468', '-o', d, `tftp://127.0.0.1:${s.port}/${f}`]],
    'atftp lock-step blksize 1468': (s, f, d) => ['atftp', ['--get', '-r', f, '-l', d, '--option', 'blksize 1468', '127.0.0.1', String(s.port)]],
    'atftp windowsize 16 blksize 1468': (s, f, d) => ['atftp', ['--get', '-r', f, '-l', d, '--option', 'blksize 1468', '--option', 'windowsize 16', '127.0.0.1', String(s.port)]],
  };

  const results: { file: string; client: string; server: string; seconds: number; cpu: number }[] = [];
  const timeOne = async (s: Server, client: string, file: keyof typeof files): Promise<void> => {
    const [cmd, args] = clients[client]!(s, file, out);
    const c0 = cpu(s.pid);
    const t0 = process.hrtime.bigint();
    await sh(cmd, args);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (statSync(out).size !== files[file].length || !readFileSync(out).equals(files[file])) throw new Error(`${s.name} ${client} ${file}: wrong bytes`);
    results.push({ file, client, server: s.name, seconds, cpu: cpu(s.pid) - c0 });
  };

  for (const file of ['1m.bin', '64m.bin'] as const) {
    const runs = file === '1m.bin' ? RUNS * 2 : RUNS;
    for (const client of Object.keys(clients)) {
      // Interleaved, so that a noisy neighbour on the machine hits both servers alike.
      for (let r = 0; r < runs; r++) for (const s of servers) await timeOne(s, client, file);
    }
  }

  // Our own client: K fetches per process, each timed by the client itself.
  const own = buildClient(dir.path);
  const ownConfigs = { 'own lock-step blksize 1468': { blksize: 1468 }, 'own windowsize 16 blksize 1468': { blksize: 1468, windowsize: 16 } };
  const K = { '1m.bin': 20, '64m.bin': 2 };
  const ownResults: { file: string; client: string; server: string; seconds: number; cpu: number; clientCpu: number }[] = [];
  if ('path' in own) {
    for (const file of ['1m.bin', '64m.bin'] as const) {
      for (let r = 0; r < RUNS; r++) {
        for (const [client, o] of Object.entries(ownConfigs)) {
          for (const s of servers) {
            const c0 = cpu(s.pid);
            const stdout = await shOut(own.path, clientArgs('127.0.0.1', s.port, file, { ...o, count: K[file] }));
            const serverCpu = (cpu(s.pid) - c0) / K[file];
            const fetches = parseFetches(stdout);
            verifyFetches(fetches, files[file], K[file], `${s.name} ${client} ${file}`);
            const clientCpu = parseCpu(stdout) / K[file];
            for (const f of fetches) ownResults.push({ file, client, server: s.name, seconds: f.seconds, cpu: serverCpu, clientCpu });
          }
        }
      }
    }
  }

  // What every fetch costs before a byte moves: spawning the client through `ip netns exec` and one round trip (a
  // missing file: RRQ, ERROR 1, exit). It bounds the ratios of short transfers, whoever the server is.
  const floors: { client: string; seconds: number }[] = [];
  for (let r = 0; r < RUNS * 2; r++) {
    for (const [client, cmd, args] of [
      ['curl', 'curl', ['-sS', '-o', '/dev/null', `tftp://127.0.0.1:${HEPH_PORT}/missing.bin`]],
      ['atftp', 'atftp', ['--get', '-r', 'missing.bin', '-l', '/dev/null', '127.0.0.1', String(HEPH_PORT)]],
    ] as const) {
      const t0 = process.hrtime.bigint();
      await sh(cmd, [...args], [0, 1, 68, 255]);
      floors.push({ client, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    }
  }

  // 50 clients on one CPU starve each other past dnsmasq's retransmissions (it drops those transfers and curl waits
  // out its hour-long default): here clients and servers share both CPUs, as on a real network they would not.
  pinClients = false;
  if (PIN) placeServers(servers.map((s) => s.pid), `0-${availableParallelism() - 1}`);
  const concurrent: { server: string; seconds: number; cpu: number; failed: number }[] = [];
  for (let r = 0; r < RUNS; r++) {
    for (const s of servers) {
      const c0 = cpu(s.pid);
      const t0 = process.hrtime.bigint();
      // A curl that gives up (its own timeout, seen against both servers on a busy VM) is counted, not fatal.
      const settled = await Promise.allSettled(Array.from({ length: 50 }, () => sh('curl', ['-sS', '--max-time', '60', '--tftp-blksize', '1468', '-o', '/dev/null', `tftp://127.0.0.1:${s.port}/1m.bin`])));
      concurrent.push({ server: s.name, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpu: cpu(s.pid) - c0, failed: settled.filter((x) => x.status === 'rejected').length });
    }
  }

  type Cell = { file: string; client: string; server: string; seconds: number };
  const pickFrom = <T extends Cell>(xs: T[], file: string, client: string, server: string): T[] => xs.filter((x) => x.file === file && x.client === client && x.server === server);
  const pick = (file: string, client: string, server: string) => pickFrom(results, file, client, server);
  const best = (xs: { seconds: number }[]): number => Math.min(...xs.map((x) => x.seconds));
  const secs = (xs: { seconds: number }[]): number => median(xs.map((x) => x.seconds));
  /** The two goals for one file and one client: heph lock-step and heph windowsize 16, each against dnsmasq lock-step. */
  const goalLine = (file: string, d: Cell[], lock: Cell[], win: Cell[]): string =>
    `  ${file}: heph lock-step vs dnsmasq lock-step ${(secs(d) / secs(lock)).toFixed(2)}x (best ${(best(d) / best(lock)).toFixed(2)}x; goal >= 1.0); heph windowsize 16 vs dnsmasq lock-step ${(secs(d) / secs(win)).toFixed(2)}x (best ${(best(d) / best(win)).toFixed(2)}x; goal >= 5)`;
  const mibs = (file: string, secs: number): string => ((files[file as keyof typeof files].length / MiB) / secs).toFixed(1);

  console.log(`\nTFTP benchmark: heph vs dnsmasq in one netns on loopback, ${RUNS} runs (1 MiB: ${RUNS * 2}), medians; client start-up included.`);
  console.log(PIN ? 'Clients on CPU 0, both servers (every thread) on CPU 1, as on two machines (the 50-concurrent row: unpinned).' : 'Unpinned: the scheduler places clients and servers.');
  console.log(`Load average: ${load0} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end (2 CPUs).`);
  console.log(`ratio = dnsmasq time / heph time (>1: heph faster); best = the same for the fastest run of each (least disturbed by`);
  console.log(`other load on the machine). cpu = server CPU seconds per transfer (median).\n`);
  console.log('file     client                            heph MiB/s  dnsmasq MiB/s  ratio   best   heph cpu  dnsmasq cpu');
  for (const file of ['1m.bin', '64m.bin']) {
    for (const client of Object.keys(clients)) {
      const h = pick(file, client, 'heph');
      const d = pick(file, client, 'dnsmasq');
      const ht = median(h.map((x) => x.seconds));
      const dt = median(d.map((x) => x.seconds));
      console.log(
        `${file.padEnd(8)} ${client.padEnd(33)} ${mibs(file, ht).padStart(10)} ${mibs(file, dt).padStart(14)} ${(dt / ht).toFixed(2).padStart(6)} ${(best(d) / best(h)).toFixed(2).padStart(6)}  ${median(h.map((x) => x.cpu)).toFixed(2).padStart(8)} ${median(d.map((x) => x.cpu)).toFixed(2).padStart(12)}`,
      );
    }
  }
  console.log('\nGoal checks (same client, atftp):');
  for (const file of ['1m.bin', '64m.bin']) {
    console.log(goalLine(file, pick(file, 'atftp lock-step blksize 1468', 'dnsmasq'), pick(file, 'atftp lock-step blksize 1468', 'heph'), pick(file, 'atftp windowsize 16 blksize 1468', 'heph')));
  }
  const floor = (client: string): number => median(floors.filter((f) => f.client === client).map((f) => f.seconds));
  const af = floor('atftp');
  console.log(`\nClient start-up floor (fetch of a missing file, no data): curl ${(floor('curl') * 1000).toFixed(1)} ms, atftp ${(af * 1000).toFixed(1)} ms.`);
  for (const file of ['1m.bin', '64m.bin']) {
    const dLock = secs(pick(file, 'atftp lock-step blksize 1468', 'dnsmasq'));
    const hWin = secs(pick(file, 'atftp windowsize 16 blksize 1468', 'heph'));
    // Only meaningful when both times are clearly above the floor (the floor is a median too, and noisy).
    const net = hWin - af > 0.002 && dLock > af ? `${((dLock - af) / (hWin - af)).toFixed(2)}x` : 'not measurable (within the floor)';
    console.log(`  ${file}: 5x dnsmasq lock-step needs <= ${((dLock / 5) * 1000).toFixed(1)} ms per fetch; net of the floor, heph windowsize 16 vs dnsmasq lock-step ${net}`);
  }
  if ('missing' in own) console.log(`\nOwn client rows skipped: ${own.missing}.`);
  else {
    const ownPick = (file: string, client: string, server: string) => pickFrom(ownResults, file, client, server);
    console.log(`\nOwn client (bench/tftp-client.c: recvmmsg, ${K['1m.bin']} fetches of 1 MiB / ${K['64m.bin']} of 64 MiB per process, ${RUNS} processes per cell; per-fetch`);
    console.log('wall time measured by the client, no process start-up; bytes and hash of every fetch checked). Medians over all fetches.');
    console.log('file     client                            heph MiB/s  dnsmasq MiB/s  ratio   best   heph cpu  dnsmasq cpu  client cpu h/d');
    for (const file of ['1m.bin', '64m.bin']) {
      for (const client of Object.keys(ownConfigs)) {
        const h = ownPick(file, client, 'heph');
        const d = ownPick(file, client, 'dnsmasq');
        const ht = median(h.map((x) => x.seconds));
        const dt = median(d.map((x) => x.seconds));
        const ms = (xs: { cpu: number }[]): string => (median(xs.map((x) => x.cpu)) * 1000).toFixed(1);
        const cms = (xs: { clientCpu: number }[]): string => (median(xs.map((x) => x.clientCpu)) * 1000).toFixed(1);
        console.log(
          `${file.padEnd(8)} ${client.padEnd(33)} ${mibs(file, ht).padStart(10)} ${mibs(file, dt).padStart(14)} ${(dt / ht).toFixed(2).padStart(6)} ${(best(d) / best(h)).toFixed(2).padStart(6)}  ${ms(h).padStart(6)}ms ${ms(d).padStart(10)}ms  ${cms(h)}/${cms(d)} ms`,
        );
      }
    }
    console.log('\nGoal checks (same client, own):');
    for (const file of ['1m.bin', '64m.bin']) {
      console.log(goalLine(file, ownPick(file, 'own lock-step blksize 1468', 'dnsmasq'), ownPick(file, 'own lock-step blksize 1468', 'heph'), ownPick(file, 'own windowsize 16 blksize 1468', 'heph')));
    }
  }

  const hc = concurrent.filter((x) => x.server === 'heph');
  const dc = concurrent.filter((x) => x.server === 'dnsmasq');
  const hcs = median(hc.map((x) => x.seconds));
  const dcs = median(dc.map((x) => x.seconds));
  console.log(`\n50 concurrent 1 MiB curl fetches (blksize 1468): heph ${hcs.toFixed(2)} s, dnsmasq ${dcs.toFixed(2)} s, ratio ${(dcs / hcs).toFixed(2)} (best ${(best(dc) / best(hc)).toFixed(2)}); server cpu heph ${median(hc.map((x) => x.cpu)).toFixed(2)} s, dnsmasq ${median(dc.map((x) => x.cpu)).toFixed(2)} s; curl failures heph ${hc.reduce((a, x) => a + x.failed, 0)}, dnsmasq ${dc.reduce((a, x) => a + x.failed, 0)}`);
  await heph.stop();
}

main().finally(cleanup).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
