// The bench's own TFTP client (bench/tftp-client.c) against real servers: heph on loopback and dnsmasq in a
// namespace (it only serves port 69). Every fetch's byte count and hash must match the file, at the sizes where TFTP
// goes wrong (empty, one short of a block, a whole block, one over, 1 MiB, past the block-number wrap), in
// lock-step, with windowsize 16, and against a server that ignores the options. A scripted server on loopback then
// proves what the client does when blocks go missing or the server stays silent.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildClient, clientArgs, parseFetches, verifyFetches, wordHash, type Fetch } from '../../bench/tftp-client.ts';
import { inProcessHeph, tempDir } from '../helpers/heph.ts';
import { canUseNetns, Netns } from '../helpers/netns.ts';
import { run, tftpOf } from './tftp-raw.ts';

const dir = tempDir('heph-tftp-bench-client-');
chmodSync(dir.path, 0o755); // dnsmasq reads as nobody
const built = buildClient(dir.path);
const client = 'path' in built ? built.path : '';

// 65535 blocks of 512 bytes is 33,553,920 bytes: anything bigger wraps the block number at 512-byte blocks.
const ROLLOVER = 65535 * 512 + 70_000;
const SIZES = [0, 511, 512, 513, 1 << 20, ROLLOVER];
const files = new Map<string, Buffer>();
for (const n of SIZES) {
  const data = randomBytes(n);
  writeFileSync(join(dir.path, `f${n}.bin`), data);
  chmodSync(join(dir.path, `f${n}.bin`), 0o644);
  files.set(`f${n}.bin`, data);
}

after(() => dir.remove());

test('the hash agrees with a bytewise reading of its definition', () => {
  // 4-lane word FNV-1a written out byte by byte, independent of wordHash's word reads, lane indexing and tail handling.
  const slow = (b: Buffer): string => {
    const fnv = (h: number, w: number): number => Number((BigInt((h ^ w) >>> 0) * 16777619n) & 0xffffffffn);
    const padded = Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
    const words = [...Array(padded.length / 4).keys()].map((i) => padded[4 * i]! + padded[4 * i + 1]! * 256 + padded[4 * i + 2]! * 65536 + padded[4 * i + 3]! * 16777216);
    const lanes = [0, 1, 2, 3].map((lane) => words.filter((_, i) => i % 4 === lane).reduce(fnv, 2166136261));
    return ([...lanes, b.length, 0].reduce(fnv, 2166136261) >>> 0).toString(16).padStart(8, '0');
  };
  for (const n of [0, 1, 3, 4, 5, 15, 16, 17, 511, 4096]) {
    const b = randomBytes(n);
    assert.equal(wordHash(b), slow(b), `length ${n}`);
  }
  assert.notEqual(wordHash(Buffer.from([1, 2, 3])), wordHash(Buffer.from([1, 2, 3, 0])), 'a zero tail byte changes the hash');
});

describe('bench TFTP client against real servers', { skip: 'missing' in built ? built.missing : !canUseNetns() && 'needs root for a network namespace' }, () => {
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  let hephPort = 0;
  let ns: Netns;
  let dnsmasq: ChildProcess;

  before(async () => {
    heph = await inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'], maxTransfersPerClient: 32 } });
    const tftp = tftpOf(heph.daemon);
    hephPort = tftp.listening()[0]!.port;
    for (const name of files.keys()) tftp.files.register(name, join(dir.path, name));
    ns = Netns.create('tbcli');
    dnsmasq = ns.spawn('dnsmasq', ['--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${dir.path}`, '--listen-address=127.0.0.1', '--bind-interfaces', '-d'], { stdio: ['ignore', 'ignore', 'pipe'] });
    for (let i = 0; ; i++) {
      try {
        await fetchFrom('dnsmasq', 'f511.bin', {});
        break;
      } catch (err) {
        if (i > 50) throw err;
        await sleep(100);
      }
    }
  });

  after(async () => {
    if (dnsmasq && dnsmasq.exitCode === null) dnsmasq.kill('SIGTERM');
    await heph?.stop();
    ns?.destroy();
  });

  async function fetchFrom(server: 'heph' | 'dnsmasq', file: string, o: Parameters<typeof clientArgs>[3]): Promise<Fetch[]> {
    const args = clientArgs('127.0.0.1', server === 'heph' ? hephPort : 69, file, o);
    const { stdout } = server === 'heph' ? await run(client, args, { timeout: 120_000 }) : await run('ip', ['netns', 'exec', ns.name, client, ...args], { timeout: 120_000 });
    const fetches = parseFetches(stdout);
    verifyFetches(fetches, files.get(file)!, o.count ?? 1, `${server} ${file}`);
    return fetches;
  }

  for (const size of SIZES) {
    test(`${size} bytes from heph and dnsmasq: lock-step at 512 (no options) and blksize 1468 with tsize, twice in one process`, async () => {
      for (const server of ['heph', 'dnsmasq'] as const) {
        const plain = await fetchFrom(server, `f${size}.bin`, {});
        assert.deepEqual([plain[0]!.blksize, plain[0]!.windowsize, plain[0]!.oack], [512, 1, false], `${server}: no options, no OACK`);
        const big = await fetchFrom(server, `f${size}.bin`, { blksize: 1468, tsize: true, count: 2 });
        assert.deepEqual([big[1]!.blksize, big[1]!.windowsize, big[1]!.oack], [1468, 1, true], `${server}: blksize 1468 accepted by OACK`);
      }
    });
  }

  test('windowsize 16 from heph: 1 MiB at 1468-byte blocks, and past the wrap at 512-byte blocks', async () => {
    const a = await fetchFrom('heph', 'f1048576.bin', { blksize: 1468, windowsize: 16, tsize: true, count: 3 });
    assert.deepEqual([a[0]!.blksize, a[0]!.windowsize, a[0]!.oack], [1468, 16, true]);
    const b = await fetchFrom('heph', `f${ROLLOVER}.bin`, { blksize: 512, windowsize: 16 });
    assert.deepEqual([b[0]!.blksize, b[0]!.windowsize], [512, 16]);
  });

  test('with -G (UDP_GRO) each window heph sends in one GSO send arrives as one datagram and is split into its blocks', async () => {
    // 1 MiB at 1468 is 715 blocks in 179 windows of 4; GSO lets a send's last segment be short, so the last window
    // (713, 714 and the short 715) is one send too.
    const blocks = Math.floor((1 << 20) / 1468) + 1;
    const plain = await fetchFrom('heph', 'f1048576.bin', { blksize: 1468, windowsize: 4, tsize: true });
    assert.equal(plain[0]!.datagrams, blocks + 1, 'without -G: one datagram per block, and the OACK');
    const gro = await fetchFrom('heph', 'f1048576.bin', { blksize: 1468, windowsize: 4, tsize: true, gro: true, count: 2 });
    assert.deepEqual(gro.map((x) => [x.blksize, x.windowsize, x.datagrams]), [[1468, 4, Math.ceil(blocks / 4) + 1], [1468, 4, Math.ceil(blocks / 4) + 1]], 'with -G: one per window, and the OACK');
    // Past the block-number wrap at 512-byte blocks, windows of 16: the split keeps the blocks in order.
    const wrap = await fetchFrom('heph', `f${ROLLOVER}.bin`, { blksize: 512, windowsize: 16, gro: true });
    assert.ok(wrap[0]!.datagrams < ROLLOVER / 512 / 8, `${wrap[0]!.datagrams} datagrams for ${Math.ceil(ROLLOVER / 512)} blocks`);
  });

  test('dnsmasq ignores windowsize: lock-step under an OACK without it, and DATA 1 straight away when nothing else was asked', async () => {
    const a = await fetchFrom('dnsmasq', 'f1048576.bin', { blksize: 1468, windowsize: 16 });
    assert.deepEqual([a[0]!.blksize, a[0]!.windowsize, a[0]!.oack], [1468, 1, true]);
    const b = await fetchFrom('dnsmasq', `f${ROLLOVER}.bin`, { windowsize: 16 });
    assert.deepEqual([b[0]!.blksize, b[0]!.windowsize, b[0]!.oack], [512, 1, false]);
  });

  test('a missing file is an error exit naming the server\'s ERROR', async () => {
    await assert.rejects(run(client, clientArgs('127.0.0.1', hephPort, 'nope.bin', {})), (err: { code?: number; stderr?: string }) => err.code === 1 && /server ERROR 1/.test(err.stderr ?? ''));
  });
});

/**
 * A scripted server on loopback: answers the second RRQ (the first is ignored, to prove the client retries), OACKs
 * `oack` (or sends DATA 1 at once when it is undefined), sends windows of `window` blocks after each ACK, drops each
 * block in `drop` the first time, and records every ACK the client sends.
 */
async function scripted(data: Buffer, o: { blksize: number; window: number; oack?: Record<string, string>; drop: number[] }, args: Parameters<typeof clientArgs>[3]): Promise<{ acks: number[]; rrqs: number; fetches: Fetch[] }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const acks: number[] = [];
  let rrqs = 0;
  const dropped = new Set<number>();
  const last = Math.floor(data.length / o.blksize) + 1;
  const send = (to: RemoteInfo, block: number): void => {
    if (o.drop.includes(block) && !dropped.has(block)) return void dropped.add(block);
    const head = Buffer.from([0, 3, (block >> 8) & 255, block & 255]);
    sock.send(Buffer.concat([head, data.subarray((block - 1) * o.blksize, block * o.blksize)]), to.port, to.address);
  };
  const windowAfter = (to: RemoteInfo, acked: number): void => {
    for (let b = acked + 1; b <= Math.min(last, acked + o.window); b++) send(to, b);
  };
  sock.on('message', (m, from) => {
    const op = m.readUInt16BE(0);
    if (op === 1 && ++rrqs === 2) {
      if (o.oack) sock.send(Buffer.from(`\0\x06${Object.entries(o.oack).map(([k, v]) => `${k}\0${v}\0`).join('')}`, 'latin1'), from.port, from.address);
      else windowAfter(from, 0);
    } else if (op === 4) {
      const n = m.readUInt16BE(2);
      acks.push(n);
      if (n < last) windowAfter(from, n);
    }
  });
  try {
    const { stdout } = await run(client, clientArgs('127.0.0.1', (sock.address()).port, 'x', { timeoutMs: 200, ...args }), { timeout: 30_000 });
    return { acks, rrqs, fetches: parseFetches(stdout) };
  } finally {
    sock.close();
  }
}

describe('bench TFTP client against a scripted server', { skip: 'missing' in built ? built.missing : false }, () => {
  const data = randomBytes(512 * 20 + 100); // 21 blocks

  test('windowsize 4 with block 6 lost: the client re-ACKs block 5 once, then ACKs each window\'s last block', async () => {
    const r = await scripted(data, { blksize: 512, window: 4, oack: { blksize: '512', windowsize: '4' }, drop: [6] }, { blksize: 512, windowsize: 4 });
    verifyFetches(r.fetches, data, 1, 'scripted');
    assert.equal(r.rrqs, 2, 'the unanswered RRQ was sent again after the timeout');
    // ACK 0 for the OACK; 4 ends the first window; 5 is the re-ACK for the gap at 6 (7 and 8 arrive out of order);
    // then windows 6-9, 10-13, 14-17, 18-21 (21 is the short last block).
    assert.deepEqual(r.acks, [0, 4, 5, 9, 13, 17, 21]);
  });

  test('a server that ignores every option (DATA 1 at once) is fetched in lock-step at 512 bytes, across a lost block', async () => {
    const r = await scripted(data, { blksize: 512, window: 1, drop: [3] }, { blksize: 1468, windowsize: 16, tsize: true });
    verifyFetches(r.fetches, data, 1, 'scripted');
    assert.deepEqual([r.fetches[0]!.blksize, r.fetches[0]!.windowsize, r.fetches[0]!.oack], [512, 1, false]);
    // Lock-step: every block is ACKed; block 3 never came, so after the timeout ACK 2 goes out again.
    assert.deepEqual(r.acks, [...Array(21).keys()].map((i) => i + 1).flatMap((b) => (b === 2 ? [2, 2] : [b])));
  });

  test('an OACK with an option the client did not ask for is refused with ERROR 8', async () => {
    await assert.rejects(scripted(data, { blksize: 512, window: 1, oack: { blksize: '512', windowsize: '8' }, drop: [] }, { blksize: 512 }), (err: { code?: number; stderr?: string }) => err.code === 1 && /OACK/.test(err.stderr ?? ''));
  });
});
