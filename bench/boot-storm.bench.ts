// Boot storm: N simulated machines netboot at once against one heph in a network namespace, then the asset
// step alone against heph and against nginx (sendfile) serving the same files, and the TFTP step alone against
// heph and against dnsmasq serving the same iPXE binary, in the same run.
//   npm run bench -- boot-storm [--n 1000] [--concurrency N] [--kernel-mb 1] [--initrd-mb 4] [--asset-concurrency 64]
//                               [--efi ipxe.efi|snponly.efi] [--warmup W] [--tftp-gro on|off]
// Flow per machine: DHCP DISCOVER as an x64 UEFI PXE ROM (relayed) → TFTP ipxe.efi → DHCP as iPXE → /boot.ipxe →
// /ipxe (auto-accepted by a selector) → kernel + initrd → /config/<token> → 4 Talos events over gRPC.
// The machines are one Node process (bench/storm/client.ts), which does DHCP, plus the C helpers it drives, which
// time each step themselves: TFTP (bench/tftp-client.c -S), the HTTP GETs (bench/http-client.c: the downloads
// counted and dropped, the small pages kept) and the Talos events (bench/grpc-client.c, over libnghttp2).
import { statSync } from 'node:fs';
import { cpus, loadavg, setPriority, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { spawnHeph, tempDir } from '../test/helpers/heph.ts';
import { cleanupOnSignal, peakRss, procUsage, summarize, table, threadCpu, watchSteal } from './lib.ts';
import type { StormLine } from './storm/client.ts';
import { startStormClient, type StormClient } from './storm/driver.ts';
import { startDnsmasqTftp } from './storm/dnsmasq.ts';
import { createLab, DNSMASQ_IP, GRPC_PORT, HTTP_PORT, LAB_ADDRESSES, NGINX_PORT, prepareDataDir, SERVER_IP, stormSettings, writeRelease } from './storm/lab.ts';
import { STEPS } from './storm/machine.ts';
import { startNginx } from './storm/nginx.ts';
import { watchDiskWait } from './storm/proc.ts';
import { tftpFloor } from './storm/tftp-alone.ts';

const { values: f } = parseArgs({
  options: {
    n: { type: 'string' },
    concurrency: { type: 'string' },
    'kernel-mb': { type: 'string' },
    'initrd-mb': { type: 'string' },
    'asset-concurrency': { type: 'string' },
    efi: { type: 'string' },
    warmup: { type: 'string' },
    'tftp-gro': { type: 'string' },
  },
});
const N = Number(f.n ?? 1000);
const CONCURRENCY = Number(f.concurrency ?? N);
const MB = 1024 * 1024;
// Real Talos sizes are ~10 MB + ~100 MB; at N = 1000 that is 110 GB through one veth, so the default scales down.
const KERNEL = Math.round(Number(f['kernel-mb'] ?? (N <= 20 ? 10 : 1)) * MB);
const INITRD = Math.round(Number(f['initrd-mb'] ?? (N <= 20 ? 100 : 4)) * MB);
// Both are Debian's real binaries: ipxe.efi brings its own NIC drivers, snponly.efi (a fifth of the size) drives
// the NIC through the firmware, as many sites use it for UEFI.
const EFI = f.efi ?? 'ipxe.efi';
const ASSET_CONCURRENCY = Number(f['asset-concurrency'] ?? Math.min(N, 64));
// W other machines boot first, unmeasured, as many at a time as the storm's concurrency: the storm then meets a heph
// that has compiled its hot code (V8 spent ~2.4 s of a cold storm's CPU optimising it), as a daemon that has served
// boots before.
const WARMUP = Number(f.warmup ?? 0);
// A warm-up longer than the lab has addresses for reuses them (see StormRequest.warmupAddresses): a daemon that has
// served tens of thousands of boots, for its memory over time.
// (None left when N alone overfills the lab: createLab then says so, not this check.)
const WARM_ADDRESSES = Math.min(WARMUP, Math.max(0, LAB_ADDRESSES - N));
if (WARM_ADDRESSES < Math.min(WARMUP, CONCURRENCY)) throw new RangeError(`--warmup ${WARMUP} needs ${Math.min(WARMUP, CONCURRENCY)} addresses besides the storm's ${N}; the lab has ${LAB_ADDRESSES}`);
// The TFTP helper's sockets take each window heph sends as one GSO datagram whole (see bench/storm/client.ts);
// off: one datagram per block, the kernel splitting each window on the receiving side, as before 2026-11-23.
const TFTP_GRO_ARG = f['tftp-gro'] ?? 'on';
if (TFTP_GRO_ARG !== 'on' && TFTP_GRO_ARG !== 'off') throw new Error(`--tftp-gro ${TFTP_GRO_ARG}: on or off`);
const TFTP_GRO = TFTP_GRO_ARG === 'on';

const MiB = (b: number): string => (b / MB).toFixed(1);

// The lab first: it refuses a count that does not fit its addresses before anything is left to clean up.
const lab = createLab(N + WARM_ADDRESSES);
const tmp = tempDir('heph-storm-');
let heph: Awaited<ReturnType<typeof spawnHeph>> | undefined;
let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
let dnsmasq: Awaited<ReturnType<typeof startDnsmasqTftp>> | undefined;
let rssTimer: NodeJS.Timeout | undefined;
let client: StormClient | undefined;
const cleanup = cleanupOnSignal(async () => {
  clearInterval(rssTimer);
  // Inside the client namespace, where nothing would stop it once the namespace is gone; on SIGTERM it removes its
  // helpers' directory. `finished` settled already if it has exited (and kill then does nothing).
  if (client) {
    client.proc.kill('SIGTERM');
    await Promise.race([client.finished.catch(() => {}), sleep(2000)]);
  }
  await dnsmasq?.stop();
  await nginx?.stop();
  await heph?.stop();
  lab.destroy();
  tmp.remove();
});
try {
  const release = writeRelease(join(tmp.path, 'release'), KERNEL, INITRD);
  const dataDir = join(tmp.path, 'data');
  const profilesDir = join(tmp.path, 'profiles');
  await prepareDataDir(dataDir, profilesDir, release);
  heph = await spawnHeph(stormSettings(dataDir, profilesDir, N, EFI), { netns: lab.srv });
  // An idle nginx costs nothing during the storm; it is measured only in the asset phase afterwards.
  nginx = await startNginx(lab.srv, tmp.path, release.dir, `${SERVER_IP}:${NGINX_PORT}`);
  // At the priority of heph's packet threads (threads.packetPriority), as the TFTP helper runs: the same terms.
  dnsmasq = await startDnsmasqTftp(lab.srv, '/usr/lib/ipxe', DNSMASQ_IP, N + 64);
  setPriority(dnsmasq.pid, -10);
  const pid = heph.proc.pid!;

  console.log(`boot storm: N=${N}, concurrency=${CONCURRENCY}, TFTP ${EFI} ${(statSync(join('/usr/lib/ipxe', EFI)).size / 1024).toFixed(0)} KiB (client UDP_GRO ${TFTP_GRO ? 'on' : 'off'}), kernel ${MiB(KERNEL)} MiB + initrd ${MiB(INITRD)} MiB; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM; node ${process.version}`);
  // What the kernel dropped in heph's namespace: datagrams on a full socket receive buffer, and connections on a
  // full accept queue (a machine then resends its SYN a second later).
  const drops = (): { udp: number; listen: number } => {
    // Both files are pairs of lines: `Udp: name name …` then `Udp: value value …`.
    const lines = lab.srv.run('cat', ['/proc/net/snmp', '/proc/net/netstat']).trim().split('\n');
    const counter = new Map<string, number>();
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const [names, values] = [lines[i]!.split(/\s+/), lines[i + 1]!.split(/\s+/)];
      for (let j = 1; j < names.length; j++) counter.set(`${names[0]}${names[j]}`, Number(values[j]));
    }
    return { udp: counter.get('Udp:RcvbufErrors') ?? NaN, listen: counter.get('TcpExt:ListenOverflows') ?? NaN };
  };
  let drops0 = drops();
  let cpu0 = procUsage(pid).cpuSeconds;
  let threads0 = threadCpu(pid);
  let disk = watchDiskWait(pid, 50);
  let steal = watchSteal();
  // heph's RSS through the warm-up, every 5 s: whether a daemon that keeps serving boots levels off or keeps growing.
  const warmRss: number[] = [];
  let warmPeak = NaN;
  if (WARMUP)
    rssTimer = setInterval(() => {
      // heph gone: its machines' failures will say so; the sampling just stops.
      try {
        warmRss.push(procUsage(pid).rssBytes);
      } catch {
        clearInterval(rssTimer);
      }
    }, 5000);
  let clientCpu0 = 0;
  let warm: Extract<StormLine, { kind: 'warm' }> | undefined;
  let stolen = NaN;
  let cpu = NaN;
  let threads = new Map<string, number>();
  let peak = NaN;
  let clientCpu = NaN;
  // Over each server's own passes of the asset and TFTP steps alone: its CPU (heph's whole process, as nginx's and
  // dnsmasq's), by "<step> <server>"; and over the TFTP passes the datagrams the kernel dropped in the server's
  // namespace on a full receive buffer.
  const passCpu = new Map<string, number>();
  const tftpDrops = new Map<string, number>();
  let metrics = '';
  let dropped = { udp: NaN, listen: NaN };
  const stormClient = (client = startStormClient(
    lab.cli,
    {
      n: N,
      concurrency: CONCURRENCY,
      server: SERVER_IP,
      httpPort: HTTP_PORT,
      grpcPort: GRPC_PORT,
      bootFile: EFI,
      tftpGro: TFTP_GRO,
      warmup: WARMUP,
      warmupAddresses: WARM_ADDRESSES,
      runId: Date.now().toString(32).slice(-6),
      assets: { concurrency: ASSET_CONCURRENCY, references: [{ name: 'nginx (sendfile)', base: `http://${SERVER_IP}:${NGINX_PORT}`, files: [release.kernel.name, release.initrd.name] }] },
      tftpAlone: { references: [{ name: 'dnsmasq', host: DNSMASQ_IP }] },
    },
    (l) => {
      if (l.kind === 'pass') {
        const used = procUsage(l.server === 'heph' ? pid : l.step === 'tftp' ? dnsmasq!.pid : nginx!.pid).cpuSeconds;
        const sign = l.phase === 'begin' ? -1 : 1;
        const key = `${l.step} ${l.server}`;
        passCpu.set(key, (passCpu.get(key) ?? 0) + sign * used);
        if (l.step === 'tftp') tftpDrops.set(l.server, (tftpDrops.get(l.server) ?? 0) + sign * drops().udp);
      }
      if (l.kind === 'warm') {
        // What the storm costs starts now; the peak RSS spans both.
        warm = l;
        clearInterval(rssTimer);
        warmRss.push(procUsage(pid).rssBytes);
        warmPeak = peakRss(pid);
        drops0 = drops();
        cpu0 = procUsage(pid).cpuSeconds;
        threads0 = threadCpu(pid);
        disk.stop();
        disk = watchDiskWait(pid, 50);
        steal = watchSteal();
        clientCpu0 = procUsage(stormClient.proc.pid!).cpuSeconds;
      }
      if (l.kind === 'storm') {
        cpu = procUsage(pid).cpuSeconds - cpu0;
        threads = new Map([...threadCpu(pid)].map(([name, s]) => [name, s - (threads0.get(name) ?? 0)]));
        peak = peakRss(pid);
        disk.stop();
        stolen = steal();
        clientCpu = procUsage(stormClient.proc.pid!).cpuSeconds - clientCpu0;
        // Before the TFTP step alone adds its own transfers.
        const d = drops();
        dropped = { udp: d.udp - drops0.udp, listen: d.listen - drops0.listen };
        metrics = lab.srv.run('curl', ['-s', `http://${SERVER_IP}:${HTTP_PORT}/metrics`]);
      }
    },
  ));
  const lines = await stormClient.finished;
  const storm = lines.find((l): l is Extract<StormLine, { kind: 'storm' }> => l.kind === 'storm')!;
  const { results, wallS } = storm;

  const rows = STEPS.map((step) => {
    const ms = results.flatMap((r) => (r.trace.ms[step] === undefined ? [] : [r.trace.ms[step]!]));
    const bytes = results.reduce((a, r) => a + (r.trace.bytes[step] ?? 0), 0);
    const s = summarize(ms);
    return { step, ok: s.n, failed: results.filter((r) => r.failures.some((x) => x.step === step)).length, 'p50 ms': s.p50, 'p99 ms': s.p99, 'max ms': s.max, 'MiB total': MiB(bytes), 'MiB/s': MiB(bytes / wallS) };
  });
  const done = results.filter((r) => r.done).length;
  if (warm) {
    const reused = WARMUP > WARM_ADDRESSES ? ` on ${WARM_ADDRESSES} addresses in turn` : '';
    console.log(`warm-up: ${warm.done}/${WARMUP} other machines booted before the storm${reused}, ${WARMUP <= CONCURRENCY ? 'all at once' : `${CONCURRENCY} at a time`}, not measured${warm.failures.length ? `; failures: ${warm.failures.join('; ')}` : ''}`);
    console.log(`heph RSS through the warm-up, every 5 s and at its end (MiB): ${warmRss.map(MiB).join(' ')}; peak by then ${MiB(warmPeak)}`);
  }
  console.log(table(rows));
  console.log(`\nmachines completed: ${done}/${N} in ${wallS.toFixed(1)} s; heph CPU ${cpu.toFixed(1)} s (${((100 * cpu) / wallS).toFixed(0)}% of one core), peak RSS ${MiB(peak)} MiB${warm ? ' (over the warm-up and the storm)' : ''}`);
  const byThread = [...threads].sort((a, b) => b[1] - a[1]).map(([name, s]) => `${name === 'node' ? "node (V8's compiler and GC helpers, libuv's pool)" : name} ${s.toFixed(1)} s`);
  console.log(`heph CPU by thread: ${byThread.join(', ')}`);
  // DHCP is timed in the client process: when it is near 100% the DHCP latencies above include its own queueing.
  console.log(`storm client CPU ${clientCpu.toFixed(1)} s (${((100 * clientCpu) / wallS).toFixed(0)}% of one core) + its C helpers${warm ? ' (with the warm-up)' : ''}: TFTP ${storm.helperCpuS.tftp.toFixed(1)} s, HTTP (pages, kernel and initrd) ${storm.helperCpuS.http.toFixed(1)} s, events ${storm.helperCpuS.grpc.toFixed(1)} s; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')}; host steal ${stolen.toFixed(1)} % of CPU time`);
  const retransmits = results.reduce((a, r) => a + (r.trace.dhcpRetransmits ?? 0), 0);
  console.log(`DHCP DISCOVER retransmissions (PXE timing 4/8/16/32 s): ${retransmits}; UDP datagrams dropped on a full receive buffer in heph's namespace: ${dropped.udp}; TCP connections dropped on a full accept queue there: ${dropped.listen}`);
  // heph's own count of what TFTP sent again (an ACK later than tftp.retryTimeoutMs) and refused.
  const tftpLines = metrics.split('\n').filter((l) => /^heph_tftp_(retransmits_total|errors_total|transfers_total)/.test(l));
  console.log(`heph TFTP${warm ? ' (with the warm-up)' : ''}: ${tftpLines.map((l) => l.replace(/^heph_tftp_/, '')).join('; ')}`);
  const reasons = new Map<string, number>();
  for (const r of results) for (const x of r.failures) reasons.set(x.message, (reasons.get(x.message) ?? 0) + 1);
  if (reasons.size) console.log(`failures by reason:\n  ${[...reasons].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([m, n]) => `${n} × ${m}`).join('\n  ')}`);
  console.log(`heph's main thread was in uninterruptible (disk) sleep in ${(100 * disk.fraction()).toFixed(0)}% of ${disk.samples()} samples: time it could not answer anything`);

  const assets = lines.filter((l): l is Extract<StormLine, { kind: 'assets' }> => l.kind === 'assets');
  console.log(`\nasset step alone (${done} machines × kernel + initrd, ${ASSET_CONCURRENCY} at a time, same source addresses; two passes per server, heph nginx nginx heph):`);
  console.log(table(assets.map((a) => ({ server: a.server, 'MiB/s': MiB(a.bytesPerS), 'p50 ms': a.p50, 'p99 ms': a.p99, 'server CPU s': passCpu.get(`assets ${a.server}`) ?? NaN, failures: a.failures }))));
  const [h, ngx] = assets;
  if (h && ngx) console.log(`heph / nginx = ${(h.bytesPerS / ngx.bytesPerS).toFixed(2)}× (goal ≥ 0.9×)`);

  const alone = lines.filter((l): l is Extract<StormLine, { kind: 'tftp' }> => l.kind === 'tftp');
  console.log(`
TFTP step alone (${done} machines × ${EFI}, ${Math.min(CONCURRENCY, done)} at a time, blksize 1468 windowsize 4 as EDK2 asks, nothing else running; two passes per server, heph dnsmasq dnsmasq heph; dnsmasq has no windowsize, so lock-step):`);
  console.log(table(alone.map((a) => ({ server: a.server, 'MiB/s': MiB(a.bytesPerS), 'p50 ms': a.p50, 'p99 ms': a.p99, 'server CPU s': passCpu.get(`tftp ${a.server}`) ?? NaN, 'client CPU s': a.clientCpuS, 'UDP drops': tftpDrops.get(a.server) ?? NaN, failures: a.failures }))));
  const [ht, dq] = alone;
  if (ht && dq) console.log(`heph / dnsmasq = ${(ht.bytesPerS / dq.bytesPerS).toFixed(2)}× the throughput, p99 ${(dq.p99 / ht.p99).toFixed(2)}× shorter`);
  // The helper stands in for the machines' CPUs but runs on heph's: a pass cannot end before the CPU time it takes
  // both, spread over every CPU there is. With all at once the transfers end together, so it bounds their p99 too.
  const floor = ht && tftpFloor(ht, passCpu.get('tftp heph') ?? NaN, cpus().length);
  if (floor) console.log(`heph's TFTP passes: ${floor.cpuS.toFixed(2)} CPU-s each of heph and the helper, on the same ${cpus().length} CPUs: at least ${floor.floorS.toFixed(2)} s with every CPU busy; they took ${floor.wallS.toFixed(2)} s`);
  const worstP99 = Math.max(...rows.filter((r) => r.step !== 'kernel' && r.step !== 'initrd').map((r) => r['p99 ms']));
  // The asset steps of an all-at-once storm take the storm's bandwidth (N × kernel + initrd through one veth), so
  // their p99 follows the scale chosen for the assets; the servers' speed at them is the ratio to nginx above.
  const worstAll = Math.max(...rows.map((r) => r['p99 ms']));
  // The TFTP step alone is the floor of the storm's: the same transfers, with the two CPUs to themselves.
  console.log(
    `\ngoals: 0 failures: ${done === N ? 'yes' : 'NO'}; p99 < 1 s for every non-asset step: ${worstP99 < 1000 ? 'yes' : 'NO'} (worst ${worstP99.toFixed(0)} ms${ht ? `; the TFTP step alone: ${ht.p99.toFixed(0)} ms${floor ? `, on a CPU floor of ${(1000 * floor.floorS).toFixed(0)} ms` : ''}` : ''}), and for kernel and initrd at this scale too: ${worstAll < 1000 ? 'yes' : 'NO'} (worst ${worstAll.toFixed(0)} ms); peak RSS < 300 MB: ${peak < 300e6 ? 'yes' : 'NO'}`,
  );
  process.exitCode = done === N && (warm?.done ?? 0) === WARMUP ? 0 : 1;
} finally {
  await cleanup();
}
