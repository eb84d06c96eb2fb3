// The bench's own TFTP client (bench/tftp-client.c): compiled at start with the system C compiler, run K fetches per
// process, and its output parsed and checked here, so the bench and its test read it the same way.
import { buildC, CStage } from './c-stage.ts';

/** Compiles the client into `dir`; returns its path, or why it could not (no compiler, a compile error). */
export function buildClient(dir: string): { path: string } | { missing: string } {
  return buildC(dir, 'tftp-client');
}

/**
 * The client's hash: FNV-1a over little-endian 32-bit words (a zero-padded tail word last) in four lanes, word i in
 * lane i mod 4; then the lanes and the 64-bit length FNV-1a'd into one.
 */
export function wordHash(data: Buffer): string {
  const PRIME = 16777619;
  const OFFSET = 2166136261 | 0;
  const lanes = [OFFSET, OFFSET, OFFSET, OFFSET];
  const whole = data.length & ~3;
  for (let i = 0; i < whole; i += 4) lanes[(i >>> 2) & 3] = Math.imul(lanes[(i >>> 2) & 3]! ^ data.readInt32LE(i), PRIME);
  if (whole < data.length) {
    const tail = Buffer.alloc(4);
    data.copy(tail, 0, whole);
    lanes[(whole >>> 2) & 3] = Math.imul(lanes[(whole >>> 2) & 3]! ^ tail.readInt32LE(0), PRIME);
  }
  let h = OFFSET;
  for (const l of lanes) h = Math.imul(h ^ l, PRIME);
  h = Math.imul(h ^ (data.length >>> 0), PRIME);
  h = Math.imul(h ^ Math.floor(data.length / 2 ** 32), PRIME);
  return (h >>> 0).toString(16).padStart(8, '0');
}

export interface Fetch {
  bytes: number;
  hash: string;
  seconds: number;
  blksize: number;
  windowsize: number;
  oack: boolean;
  /** Datagrams received: one per block and OACK, or one per window under `gro` when the server sent it as one. */
  datagrams: number;
}

interface FetchOptions {
  blksize?: number;
  windowsize?: number;
  tsize?: boolean;
  timeoutMs?: number;
  retries?: number;
  /** Take a window sent as one GSO datagram in one piece (UDP_GRO): one receive per window instead of per block. */
  gro?: boolean;
}

/** Client arguments for one run: K fetches of `file` (or storm mode), with the options asked for (absent: not asked). */
export function clientArgs(host: string, port: number, file: string, o: FetchOptions & { count?: number; storm?: boolean }): string[] {
  return [
    ...(o.blksize === undefined ? [] : ['-b', String(o.blksize)]),
    ...(o.windowsize === undefined ? [] : ['-w', String(o.windowsize)]),
    ...(o.tsize ? ['-s'] : []),
    ...(o.storm ? ['-S'] : ['-n', String(o.count ?? 1)]),
    ...(o.gro ? ['-G'] : []),
    '-m', String(o.timeoutMs ?? 1000),
    ...(o.retries === undefined ? [] : ['-r', String(o.retries)]),
    host, String(port), file,
  ];
}

const LINE = /^fetch (\d+) bytes (\d+) hash ([0-9a-f]{8}) seconds ([0-9.]+) blksize (\d+) windowsize (\d+) oack ([01]) datagrams (\d+)$/;

/** The client's own CPU seconds (user + system) over all its fetches, from its last line. */
export function parseCpu(stdout: string): number {
  const m = /^cpu ([0-9.]+)$/m.exec(stdout);
  if (!m) throw new Error('tftp-client: no cpu line');
  return Number(m[1]);
}

export function parseFetches(stdout: string): Fetch[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('cpu '))
    .map((l) => {
      const m = LINE.exec(l);
      if (!m) throw new Error(`tftp-client: unexpected output line: ${l}`);
      return { bytes: Number(m[2]), hash: m[3]!, seconds: Number(m[4]), blksize: Number(m[5]), windowsize: Number(m[6]), oack: m[7] === '1', datagrams: Number(m[8]) };
    });
}

/** Throws unless every fetch got exactly `data`. */
export function verifyFetches(fetches: Fetch[], data: Buffer, count: number, what: string): void {
  if (fetches.length !== count) throw new Error(`${what}: ${fetches.length} fetches reported, ${count} expected`);
  const want = wordHash(data);
  for (const [i, f] of fetches.entries()) {
    if (f.bytes !== data.length || f.hash !== want) throw new Error(`${what}: fetch ${i}: ${f.bytes} bytes hash ${f.hash}, want ${data.length} bytes hash ${want}`);
  }
}

/**
 * The client in storm mode (-S): one process fetches `file` from `host` for many source addresses at once, each
 * fetch timed by the client itself from its RRQ to its last block, so a busy Node process that asked for it does
 * not add its own queueing to the figure. `request(sourceIp)` resolves with the fetch's bytes, hash and seconds.
 */
export function tftpStorm(path: string, host: string, port: number, file: string, o: FetchOptions): CStage<Pick<Fetch, 'bytes' | 'hash' | 'seconds'>> {
  return new CStage(path, clientArgs(host, port, file, { ...o, storm: true }), (rest) => {
    const m = /^bytes (\d+) hash ([0-9a-f]{8}) seconds ([0-9.]+)$/.exec(rest);
    return m ? { bytes: Number(m[1]), hash: m[2]!, seconds: Number(m[3]) } : undefined;
  });
}
