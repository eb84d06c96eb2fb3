// The storm's client side, run as its own process inside the client namespace (a process cannot switch its own
// network namespace): `ip netns exec <cli> node --import tsx bench/storm/client.ts '<json StormRequest>'`.
// Writes one JSON line per event to stdout: progress (each machine attempt), storm (all results), assets, tftp.
// After each pass line (a pass of the asset or TFTP step alone begins or ends) it waits for a newline on stdin: the
// driver's word that it has read heph's and the reference server's counters, so that what the next pass costs is not
// counted against the one before.
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PUBLISH_PATH } from '../../src/events/sink.ts';
import { buildC } from '../c-stage.ts';
import { cleanupOnSignal } from '../lib.ts';
import { tftpStorm, wordHash } from '../tftp-client.ts';
import { grpcStage } from './grpc-stage.ts';
import { httpStage } from './http-stage.ts';
import { assetPhase } from './assets.ts';
import { machineIp, RELAY_IP } from './lab.ts';
import { Relay, type Target, type Trace } from './machine.ts';
import { runStorm, stormEvents, type MachineResult } from './run.ts';
import { tftpPass, tftpPhase, type TftpPass, type TftpResult } from './tftp-alone.ts';

export interface StormRequest {
  n: number;
  concurrency: number;
  server: string;
  httpPort: number;
  grpcPort: number;
  /** The x86-64 UEFI binary heph offers (ipxe.efi unless the run chose another). */
  bootFile?: string;
  /** The TFTP helper takes each window whole (UDP_GRO); false: one datagram per block, as a machine's NIC hands them over. */
  tftpGro?: boolean;
  runId: string;
  /**
   * Machines that boot before the storm, not measured, with the identities and addresses after the storm's: heph
   * has then compiled its hot code, as a daemon that has served boots before has.
   */
  warmup?: number;
  /**
   * The addresses the warm-up's machines take turns on, after the storm's (default: one each). A warm-up longer than
   * the lab's addresses reuses them, as a site's DHCP gives a freed address to the next machine: heph finds a
   * machine by the address it last came from. With the bench's defaults (3094 addresses, 1000 in flight) two that
   * share one are in flight together only when one of them is retrying.
   */
  warmupAddresses?: number;
  retryForMs?: number;
  progress?: boolean;
  /** After the storm: the asset step alone against heph and against each of these base URLs (e.g. nginx), twice each in mirrored order. */
  assets?: { concurrency: number; references: { name: string; base: string; files: string[] }[] };
  /** Then the TFTP step alone, all machines `concurrency` at a time, against heph and each of these TFTP servers (e.g. dnsmasq), twice each in mirrored order. */
  tftpAlone?: { references: { name: string; host: string }[] };
}

export type StormLine =
  | { kind: 'progress'; ip: string; done: boolean; configPath?: string; configServed?: boolean; failures: number }
  | { kind: 'warm'; done: number; failures: string[] }
  | { kind: 'storm'; wallS: number; results: MachineResult[]; helperCpuS: { tftp: number; http: number; grpc: number } }
  | { kind: 'assets'; server: string; bytesPerS: number; failures: number; p50: number; p99: number }
  | { kind: 'pass'; step: 'assets' | 'tftp'; server: string; phase: 'begin' | 'end' }
  | ({ kind: 'tftp' } & TftpResult);

const emit = (l: StormLine): void => void process.stdout.write(`${JSON.stringify(l)}\n`);

/**
 * Emits a pass line and waits for the driver's newline. stdin is paused between marks, so that it holds no exit; a
 * paused stream stays paused when a 'data' listener is added, hence the resume.
 */
const passMark =
  (step: 'assets' | 'tftp') =>
  async (server: string, phase: 'begin' | 'end'): Promise<void> => {
    const heard = once(process.stdin, 'data');
    process.stdin.resume();
    emit({ kind: 'pass', step, server, phase });
    await heard;
    process.stdin.pause();
  };

const req = JSON.parse(process.argv[2] ?? '{}') as StormRequest;
const bootFile = req.bootFile ?? 'ipxe.efi';
// Every step but DHCP runs in the bench's C helpers. In this process, TFTP and the downloads took most of a CPU at
// N = 1000; the small pages and the events took ~5 s of CPU, half of it V8 compiling them, on the CPUs heph needs;
// and the steps' times held this process's own queueing. The EDK2 PXE options: blksize 1468, tsize, windowsize 4.
const bin = mkdtempSync(join(tmpdir(), 'heph-storm-client-'));
cleanupOnSignal(() => rmSync(bin, { recursive: true, force: true }));
const [tftpBin, httpBin, grpcBin] = ([['tftp-client'], ['http-client'], ['grpc-client', ['-lnghttp2']]] as const).map(([name, libs]) => {
  const built = buildC(bin, name, libs);
  if ('missing' in built) throw new Error(`the storm's ${name}: ${built.missing}`);
  return built.path;
});
const tftpOf = (host: string): ReturnType<typeof tftpStorm> => {
  const stage = tftpStorm(tftpBin!, host, 69, bootFile, { blksize: 1468, windowsize: 4, tsize: true, timeoutMs: 2000, retries: 5, gro: req.tftpGro ?? true });
  stage.renice(-10);
  return stage;
};
const tftp = tftpOf(req.server);
// TFTP is lock-step: a transfer of the iPXE binary is ~30 round trips, and every wait of this helper for a CPU is
// added to each of them, where the firmware it stands for has a CPU of its own. (The other steps are one round trip
// per request, each wait counted once.) At nice 0 it waited behind heph's HTTP and bookkeeping: the TFTP step's p99
// in storms of the same hour was 0.80–1.41 s (5 storms) with only heph's packet threads raised, 1.09 and 1.21 s
// with only this helper raised, 0.66–0.76 s (4) with both. It runs at the priority of heph's packet threads
// (threads.packetPriority: 10 levels above heph), so that the step's time is heph's, not the load generator's.
// For the same reason it takes each window heph sends as one GSO datagram whole (UDP_GRO): on a veth the
// receiving side's kernel work runs on the sender's CPU, and per block it cost the two shared CPUs as much as heph's
// sending did (heph-tftp 1.1 s of system time in a storm of 1000 × ipxe.efi). A machine receives on its own CPU.
// One HTTP helper for all of a machine's fetches, so that iPXE's share one keep-alive connection as they do on a
// real machine (iPXE pools connections: /boot.ipxe, /ipxe, kernel and initrd go over one). Talos fetches its config
// after iPXE is gone, on a connection of its own ('fresh'); iPXE's is left for heph to time out, as on a machine.
const http = httpStage(httpBin!, 300_000, { keepBytes: 1 << 20, pooled: true });
const publisher = grpcStage(grpcBin!, 30_000, PUBLISH_PATH);
// heph serves Debian's binary; when it is here too, every fetch's bytes are checked against it.
const local = join('/usr/lib/ipxe', bootFile);
const want = existsSync(local) ? wordHash(readFileSync(local)) : undefined;
const relay = await Relay.open(RELAY_IP, req.server);
const target: Target = {
  server: req.server,
  httpPort: req.httpPort,
  grpcPort: req.grpcPort,
  bootFile,
  events: stormEvents(),
  tftp: async (m, server, file) => {
    if (server !== req.server || file !== bootFile) throw new Error(`offered ${file} from ${server}, not ${bootFile} from ${req.server}`);
    const got = await checked(tftp, m.ip);
    return { bytes: got.bytes, ms: got.seconds * 1000 };
  },
  download: (m, url) => http.request(`${m.ip} ${url}`),
  page: (m, url, fresh) => http.request(`${m.ip} ${url} keep${fresh ? ' fresh' : ''}`),
  publish: (m, messages) => publisher.request(`${m.ip} ${req.server}:${req.grpcPort} ${messages.map((b) => b.toString('hex')).join(',')}`),
};
try {
  if (req.warmup) {
    const room = req.warmupAddresses ?? req.warmup;
    const warm = await runStorm({ n: req.warmup, first: req.n, ipOf: (i) => machineIp(req.n + ((i - req.n) % room)), concurrency: req.concurrency, relay, target, runId: `${req.runId}w` });
    emit({ kind: 'warm', done: warm.filter((r) => r.done).length, failures: warm.flatMap((r) => r.failures.map((f) => `${f.step}: ${f.message}`)).slice(0, 5) });
  }
  const t0 = performance.now();
  const results = await runStorm({
    n: req.n,
    concurrency: req.concurrency,
    relay,
    target,
    runId: req.runId,
    ...(req.retryForMs === undefined ? {} : { retryUntil: Date.now() + req.retryForMs }),
    ...(req.progress ? { onProgress: (r: MachineResult) => emit({ kind: 'progress', ip: r.m.ip, done: r.done, ...pick(r.trace), failures: r.failures.length }) } : {}),
  });
  const wallS = (performance.now() - t0) / 1000;
  const [tftpCpuS, httpCpuS, grpcCpuS] = await Promise.all([tftp.end(), http.end(), publisher.end()]);
  emit({ kind: 'storm', wallS, results, helperCpuS: { tftp: tftpCpuS, http: httpCpuS, grpc: grpcCpuS } });
  if (req.assets) {
    const ok = results.filter((r) => r.done);
    const base = `http://${req.server}:${req.httpPort}`;
    const servers = [
      { name: 'heph', machines: ok.map((r) => ({ ip: r.m.ip, urls: [`${base}${r.trace.kernelPath}`, `${base}${r.trace.initrdPath}`] })) },
      ...req.assets.references.map((ref) => ({ name: ref.name, machines: ok.map((x) => ({ ip: x.m.ip, urls: ref.files.map((f) => `${ref.base}/${f}`) })) })),
    ];
    const phase = httpStage(httpBin!, 300_000);
    try {
      for (const r of await assetPhase(servers, req.assets.concurrency, (ip, url) => phase.request(`${ip} ${url}`), passMark('assets'))) emit({ kind: 'assets', ...r });
    } finally {
      await phase.end();
    }
  }
  if (req.tftpAlone) {
    const ips = results.filter((r) => r.done).map((r) => r.m.ip);
    const hosts = new Map([['heph', req.server], ...req.tftpAlone.references.map((r) => [r.name, r.host] as const)]);
    const pass = (server: string): Promise<TftpPass> =>
      tftpPass(ips, req.concurrency, () => {
        const stage = tftpOf(hosts.get(server)!);
        return { fetch: (ip) => checked(stage, ip), end: () => stage.end() };
      });
    for (const r of await tftpPhase([...hosts.keys()], pass, passMark('tftp'))) emit({ kind: 'tftp', ...r });
  }
} finally {
  relay.close();
  await Promise.all([tftp.end(), http.end(), publisher.end()]);
  rmSync(bin, { recursive: true, force: true });
}

async function checked(stage: ReturnType<typeof tftpStorm>, ip: string): Promise<{ bytes: number; seconds: number }> {
  const got = await stage.request(ip);
  if (want !== undefined && got.hash !== want) throw new Error(`${got.bytes} bytes with hash ${got.hash}, not ${local}'s ${want}`);
  return got;
}

function pick(t: Trace): { configPath?: string; configServed?: boolean } {
  return { ...(t.configPath ? { configPath: t.configPath } : {}), ...(t.configServed ? { configServed: true } : {}) };
}
