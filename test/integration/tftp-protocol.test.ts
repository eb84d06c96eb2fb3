// The protocol rules and the bad inputs of security.md (b)#14-#25, driven packet by packet against a live heph,
// with real clients downloading alongside to prove the server keeps serving.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodeRequest, ErrorCode, Op } from '../../src/tftp/codec.ts';
import { inProcessHeph, tempDir } from '../helpers/heph.ts';
import { eventually } from '../helpers/wait.ts';
import { ack, pacedCurl, RawPeer, sample, tftpOf, type Got } from './tftp-raw.ts';

type Heph = Awaited<ReturnType<typeof inProcessHeph>>;
let heph: Heph;
let port = 0;
let port2 = 0;
const RETRY_MS = 400;
const dir = tempDir('heph-tftp-proto-');
const big = randomBytes(65535 * 512 + 4096);
const small = randomBytes(3000);

before(async () => {
  heph = await inProcessHeph({
    tftp: { enabled: true, port: 0, addresses: ['127.0.0.1', '127.0.0.2'], retryTimeoutMs: RETRY_MS, retries: 5, maxTransfersPerClient: 3, maxTransfers: 5 },
  });
  const tftp = tftpOf(heph.daemon);
  [port, port2] = tftp.listening().map((l) => l.port) as [number, number];
  writeFileSync(join(dir.path, 'big.bin'), big);
  tftp.files.register('big.bin', join(dir.path, 'big.bin'));
  tftp.files.register('small.bin', small);
  // A file next to a registered one, and a link to /etc: neither is registered, so neither is reachable.
  writeFileSync(join(dir.path, 'secret'), 'secret');
});

after(async () => {
  await heph.stop();
  dir.remove();
});

const metrics = async (): Promise<string> => (await fetch(`${heph.url}/metrics`)).text();

function isError(g: Got, code: number): boolean {
  return g.p.op === Op.ERROR && g.p.code === code;
}

async function expectError(peer: RawPeer, code: number, what: string): Promise<void> {
  const g = await peer.next();
  assert.ok(isError(g, code), `${what}: expected ERROR ${code}, got ${JSON.stringify(g.p)}`);
  // And nothing else: no DATA leaks after the error.
  assert.deepEqual(await peer.collect(50), [], what);
}

test('bad requests are answered with the right error while a real download keeps going', async () => {
  // 512-byte blocks without options: the longest transfer there is, wrapping the block number once. Paced by the
  // reader so that it is still running when the burst of bad requests ends, however fast heph and the machine are.
  const download = pacedCurl(`tftp://127.0.0.1:${port}/big.bin`, ['--tftp-no-options'], 4 << 20);
  const peer = await RawPeer.open();
  try {
    for (const name of ['../../etc/passwd', '/etc/passwd', 'big.bin/../../x', '..\\..\\x', '%2e%2e/x', './././big.bin', 'BIG.BIN', 'secret', `${dir.path}/secret`, '../secret', 'tftp-private/secret', '', 'a'.repeat(255)]) {
      peer.rrq(port, name);
      await expectError(peer, ErrorCode.NOT_FOUND, `RRQ ${name}`);
    }
    peer.send(encodeRequest(Op.WRQ, 'big.bin', 'octet'), port);
    await expectError(peer, ErrorCode.ACCESS_VIOLATION, 'WRQ');
    peer.send(encodeRequest(Op.WRQ, 'new.bin', 'octet'), port);
    await expectError(peer, ErrorCode.ACCESS_VIOLATION, 'WRQ new');
    for (const mode of ['netascii', 'mail', 'bogus']) {
      peer.rrq(port, 'small.bin', [], mode);
      await expectError(peer, ErrorCode.ILLEGAL_OPERATION, `mode ${mode}`);
    }
    for (const [what, bytes] of [
      ['filename without NUL', Buffer.from('\0\x01small.bin', 'latin1')],
      ['no mode', Buffer.from('\0\x01small.bin\0', 'latin1')],
      ['option without NUL', Buffer.from('\0\x01small.bin\0octet\0blksize\x001468', 'latin1')],
      ['1400-byte filename', encodeRequest(Op.RRQ, 'x'.repeat(1400), 'octet')],
      ['1 KiB utimeout', encodeRequest(Op.RRQ, 'small.bin', 'octet', [['utimeout', 'x'.repeat(1024)]])],
      ['RRQ of 3 bytes', Buffer.from([0, 1, 0])],
    ] as const) {
      peer.send(bytes, port);
      await expectError(peer, ErrorCode.ILLEGAL_OPERATION, what);
    }
    // Short packets and stray opcodes on the request port: dropped, never answered.
    for (const op of [0, 3, 4, 5, 6, 7, 0xffff]) {
      for (const len of [0, 1, 2, 3, 4, 9]) {
        const b = Buffer.alloc(len);
        if (len >= 2) b.writeUInt16BE(op, 0);
        peer.send(b, port);
      }
    }
    assert.deepEqual(await peer.collect(200), [], 'stray packets get no answer');
    const m = await metrics();
    assert.ok(sample(m, 'heph_tftp_errors_total{kind="short_packet"}') >= 10);
    assert.ok(sample(m, 'heph_tftp_errors_total{kind="not_found"}') >= 13);
    assert.ok(sample(m, 'heph_tftp_errors_total{kind="write_request"}') >= 2);
    assert.ok(sample(m, 'heph_tftp_errors_total{kind="bad_mode"}') >= 3);
    assert.ok(sample(m, 'heph_tftp_errors_total{kind="malformed"}') >= 6);
    assert.equal(sample(m, 'heph_tftp_active_transfers'), 1, 'the download is still running');
  } finally {
    await peer.close();
  }
  assert.ok((await download).equals(big), 'the concurrent download is byte-identical');
});

test('random datagrams at the request port and at a transfer port: nothing breaks, the transfer completes', async () => {
  const peer = await RawPeer.open();
  const noise = await RawPeer.open();
  try {
    peer.rrq(port, 'small.bin');
    const d1 = await peer.next();
    assert.equal(d1.p.op, Op.DATA);
    for (let i = 0; i < 2000; i++) {
      const b = randomBytes(Math.floor(Math.random() * 600));
      // Bias towards real opcodes so the parsers past the first two bytes get exercised.
      if (b.length >= 2 && i % 2 === 0) b.writeUInt16BE(1 + (i % 6), 0);
      noise.send(b, i % 3 === 0 ? d1.port : port);
    }
    await noise.collect(200);
    // On a busy machine the noise can outlast the retransmission timeout: resent copies of DATA 1 are legitimate.
    await peer.collect(0);
    let data = d1.p.op === Op.DATA ? d1.p.data : Buffer.alloc(0);
    for (let b = 1; b < 6; b++) {
      peer.send(ack(b), d1.port);
      let d = await peer.next();
      while (d.p.op === Op.DATA && d.p.block <= b) d = await peer.next();
      assert.ok(d.p.op === Op.DATA && d.p.block === b + 1, JSON.stringify(d.p));
      data = Buffer.concat([data, d.p.data]);
    }
    peer.send(ack(6), d1.port);
    assert.ok(data.equals(small));
  } finally {
    await peer.close();
    await noise.close();
  }
  // Requests among the noise that happened to be valid may still be running; wait them out.
  await new Promise((r) => setTimeout(r, RETRY_MS * 8));
});

test('the OACK lists only requested and accepted options, and no DATA comes before ACK 0', async () => {
  const peer = await RawPeer.open();
  try {
    peer.rrq(port, 'small.bin', [['tsize', '0'], ['blksize', '65464'], ['utimeout', '5'], ['windowsize', '0'], ['timeout', '256'], ['multicast', '']]);
    const oack = await peer.next();
    assert.ok(oack.p.op === Op.OACK, JSON.stringify(oack.p));
    assert.deepEqual([...oack.p.options], [['tsize', '3000'], ['blksize', '1468']]);
    assert.notEqual(oack.port, port, 'the transfer answers from a new TID');
    const early = await peer.collect(RETRY_MS / 2);
    assert.deepEqual(early, [], 'nothing before ACK 0');
    peer.send(ack(0), oack.port);
    const d1 = await peer.next();
    assert.ok(d1.p.op === Op.DATA && d1.p.block === 1 && d1.p.data.length === 1468);
    assert.equal(d1.port, oack.port);
    peer.send(ack(1), oack.port);
    const d2 = await peer.next();
    peer.send(ack(2), oack.port);
    const d3 = await peer.next();
    assert.ok(d2.p.op === Op.DATA && d3.p.op === Op.DATA && d3.p.block === 3);
    assert.ok(Buffer.concat([d1.p.data, d2.p.data, d3.p.data]).equals(small));
    peer.send(ack(3), oack.port);
  } finally {
    await peer.close();
  }
});

test('a blksize of 8 is honoured exactly (the CVE-2019-5482 mix-up never happens)', async () => {
  const peer = await RawPeer.open();
  try {
    peer.rrq(port, 'small.bin', [['blksize', '8']]);
    const oack = await peer.next();
    assert.ok(oack.p.op === Op.OACK);
    assert.deepEqual([...oack.p.options], [['blksize', '8']]);
    peer.send(ack(0), oack.port);
    const d = await peer.next();
    assert.ok(d.p.op === Op.DATA && d.p.data.length === 8);
    peer.send(Buffer.from('\0\x05\0\x00done\0', 'latin1'), oack.port);
  } finally {
    await peer.close();
  }
});

test('a duplicate-ACK storm resends nothing; the next new ACK gets exactly the next block', async () => {
  const before = sample(await metrics(), 'heph_tftp_errors_total{kind="duplicate_ack"}');
  const peer = await RawPeer.open();
  try {
    // The timeout option (RFC 2349) gives this transfer 3 s before any retransmission: room for a slow machine.
    peer.rrq(port, 'small.bin', [['timeout', '3']]);
    const oack = await peer.next();
    assert.ok(oack.p.op === Op.OACK && oack.p.options.get('timeout') === '3');
    peer.send(ack(0), oack.port);
    const d1 = await peer.next();
    assert.ok(d1.p.op === Op.DATA && d1.p.block === 1);
    peer.send(ack(1), d1.port);
    const d2 = await peer.next();
    assert.ok(d2.p.op === Op.DATA && d2.p.block === 2);
    for (let i = 0; i < 200; i++) peer.send(ack(1), d1.port);
    // Well inside the retransmission timeout: any DATA now would be a resend caused by the duplicates.
    assert.deepEqual(await peer.collect(500), [], 'no DATA resent on duplicate ACKs');
    // An ACK for a block not sent yet is ignored as well.
    peer.send(ack(40), d1.port);
    assert.deepEqual(await peer.collect(300), []);
    peer.send(ack(2), d1.port);
    const d3 = await peer.next();
    assert.ok(d3.p.op === Op.DATA && d3.p.block === 3);
    assert.deepEqual(await peer.collect(300), []);
    for (let b = 3; b < 6; b++) {
      peer.send(ack(b), d1.port);
      assert.equal((await peer.next()).p.op, Op.DATA);
    }
    peer.send(ack(6), d1.port);
    assert.ok(sample(await metrics(), 'heph_tftp_errors_total{kind="duplicate_ack"}') - before >= 200);
  } finally {
    await peer.close();
  }
});

test('retransmission happens only on timeout, a bounded number of times, then the transfer is aborted', async () => {
  const { machine } = heph.daemon.ctx.machines.resolve({ mac: '52:54:00:00:00:02', ip: '127.0.0.2' });
  const peer = await RawPeer.open('127.0.0.2');
  try {
    peer.rrq(port2, 'small.bin', [], 'octet', '127.0.0.2');
    const first = await peer.next();
    assert.equal(first.address, '127.0.0.2', 'the answer comes from the address the request was sent to');
    const rest = await peer.collect(RETRY_MS * 9);
    assert.equal(rest.length, 5, 'five retransmissions (tftp.retries)');
    for (const g of rest) assert.ok(g.raw.equals(first.raw) && g.port === first.port);
  } finally {
    await peer.close();
  }
  heph.daemon.ctx.writer.flush();
  const kinds = heph.daemon.ctx.timeline.list(machine.id).map((e) => [e.kind, e.data.reason]);
  assert.deepEqual(kinds, [['tftp.start', undefined], ['tftp.abort', 'timeout']]);
});

test('a packet from an unknown TID gets ERROR 5 and the transfer goes on', async () => {
  const peer = await RawPeer.open();
  const stranger = await RawPeer.open();
  try {
    peer.rrq(port, 'small.bin');
    const d1 = await peer.next();
    stranger.send(ack(1), d1.port);
    const e = await stranger.next();
    assert.ok(isError(e, ErrorCode.UNKNOWN_TID), JSON.stringify(e.p));
    let data = d1.p.op === Op.DATA ? d1.p.data : Buffer.alloc(0);
    for (let b = 1; ; b++) {
      peer.send(ack(b), d1.port);
      if (b === 6) break;
      const d = await peer.next();
      assert.ok(d.p.op === Op.DATA && d.p.block === b + 1);
      data = Buffer.concat([data, d.p.data]);
    }
    assert.ok(data.equals(small));
  } finally {
    await peer.close();
    await stranger.close();
  }
});

test('an ERROR from the client (EDK2\'s tsize probe) ends the transfer quietly, and the real download follows', async () => {
  const { machine } = heph.daemon.ctx.machines.resolve({ mac: '52:54:00:00:00:01', ip: '127.0.0.1' });
  const before = await metrics();
  const peer = await RawPeer.open();
  try {
    peer.rrq(port, 'small.bin', [['tsize', '0'], ['blksize', '1468']]);
    const oack = await peer.next();
    assert.ok(oack.p.op === Op.OACK && oack.p.options.get('tsize') === '3000');
    peer.send(Buffer.from('\0\x05\0\x08User aborted the transfer\0', 'latin1'), oack.port);
    assert.deepEqual(await peer.collect(RETRY_MS * 3), [], 'no retransmission after the client ended it');
    peer.rrq(port, 'small.bin', [['blksize', '1468']]);
    const again = await peer.next();
    assert.ok(again.p.op === Op.OACK);
    peer.send(ack(0), again.port);
    const chunks: Buffer[] = [];
    for (let b = 1; b <= 3; b++) {
      const d = await peer.next();
      assert.ok(d.p.op === Op.DATA && d.p.block === b);
      chunks.push(d.p.data);
      peer.send(ack(b), again.port);
    }
    assert.ok(Buffer.concat(chunks).equals(small));
  } finally {
    await peer.close();
  }
  // The last ACK ends the transfer in the worker after the peer has its bytes.
  const after = await eventually(async () => {
    const m = await metrics();
    return sample(m, 'heph_tftp_transfers_total{outcome="done"}') > sample(before, 'heph_tftp_transfers_total{outcome="done"}') ? m : undefined;
  }, 'the transfer to end');
  const delta = (name: string): number => sample(after, name) - sample(before, name);
  assert.equal(delta('heph_tftp_transfers_total{outcome="client-ended"}'), 1);
  assert.equal(delta('heph_tftp_transfers_total{outcome="done"}'), 1);
  assert.equal(delta('heph_tftp_retransmits_total'), 0);
  heph.daemon.ctx.writer.flush();
  const events = heph.daemon.ctx.timeline.list(machine.id);
  assert.deepEqual(events.map((e) => [e.kind, e.data.reason]), [['tftp.start', undefined], ['tftp.abort', 'client-ended'], ['tftp.start', undefined], ['tftp.done', 'done']]);
  assert.match(events[1]!.message, /^TFTP small\.bin size asked \(3000 bytes\); the client ended that request \(client sent ERROR 8: User aborted the transfer\)$/);
});

test('per-client and global limits refuse with ERROR 0 and free up when a transfer ends', async () => {
  const peers = await Promise.all([1, 2, 3, 4].map(() => RawPeer.open()));
  const others = await Promise.all([1, 2, 3].map(() => RawPeer.open('127.0.0.2')));
  try {
    const tids: number[] = [];
    for (const p of peers.slice(0, 3)) {
      p.rrq(port, 'small.bin');
      const d = await p.next();
      assert.equal(d.p.op, Op.DATA);
      tids.push(d.port);
    }
    peers[3]!.rrq(port, 'small.bin');
    assert.ok(isError(await peers[3]!.next(), ErrorCode.UNDEFINED), 'the per-client limit (3) is reached');
    for (const p of others.slice(0, 2)) {
      p.rrq(port, 'small.bin');
      assert.equal((await p.next()).p.op, Op.DATA, 'another client is not held back by the first one');
    }
    others[2]!.rrq(port, 'small.bin');
    assert.ok(isError(await others[2]!.next(), ErrorCode.UNDEFINED), 'the global limit (5) is reached');
    // The first client ends one of its transfers: its slot is free again at once.
    const ended = sample(await metrics(), 'heph_tftp_transfers_total{outcome="client-ended"}');
    peers[0]!.send(Buffer.from('\0\x05\0\x00bye\0', 'latin1'), tids[0]!);
    await eventually(async () => (sample(await metrics(), 'heph_tftp_transfers_total{outcome="client-ended"}') > ended ? true : undefined), 'the ended transfer');
    peers[3]!.rrq(port, 'small.bin');
    assert.equal((await peers[3]!.next()).p.op, Op.DATA);
  } finally {
    await Promise.all([...peers, ...others].map((p) => p.close()));
  }
  // The abandoned transfers time out after retries × timeout; then nothing is left.
  await new Promise((r) => setTimeout(r, RETRY_MS * 9));
  assert.equal(sample(await metrics(), 'heph_tftp_active_transfers'), 0);
});

test('T6: 1000 spoofed RRQs from a source that never ACKs: one window plus bounded retransmits each, bytes out under 3x bytes in', async () => {
  // The "victim" is what a spoofed source address would be: it receives whatever heph sends and never answers.
  // An attacker picks any source port, so the requests come from 250 ports of 127.0.0.3, four each.
  const victims = await Promise.all(Array.from({ length: 250 }, () => RawPeer.open('127.0.0.3')));
  const before = await metrics();
  const rrq = encodeRequest(Op.RRQ, 'small.bin', 'octet');
  try {
    for (let i = 0; i < 1000; i++) victims[i % victims.length]!.send(rrq, port);
    // Every transfer started gives up after its retransmissions: (1 + retries) × timeout, plus slack.
    await new Promise((r) => setTimeout(r, RETRY_MS * 9));
    const got = (await Promise.all(victims.map((v) => v.collect(0)))).flat();
    const bytesIn = 1000 * rrq.length;
    const bytesOut = got.reduce((n, g) => n + g.raw.length, 0);
    assert.ok(bytesOut < 3 * bytesIn, `bytes out ${bytesOut} vs bytes in ${bytesIn}: amplification ${(bytesOut / bytesIn).toFixed(2)}x`);
    // Per transfer (per server TID): DATA 1 only, never more than the first window, at most 1 + retries copies.
    const byTid = new Map<number, Got[]>();
    for (const g of got) if (g.p.op === Op.DATA) byTid.set(g.port, [...(byTid.get(g.port) ?? []), g]);
    assert.ok(byTid.size >= 1, 'some transfers started (up to the per-client limit)');
    assert.ok(byTid.size <= 3 * 4, `at most the per-client limit at a time: ${byTid.size} transfers`);
    for (const [tid, ds] of byTid) {
      assert.ok(ds.length <= 6, `TID ${tid}: ${ds.length} DATA packets, at most 1 + 5 retransmits`);
      for (const d of ds) assert.ok(d.p.op === Op.DATA && d.p.block === 1, `TID ${tid}: only block 1 before any ACK`);
    }
    for (const g of got) assert.ok(g.p.op === Op.DATA || g.p.op === Op.ERROR, `only DATA 1 and ERRORs: ${JSON.stringify(g.p)}`);
    // Refusals (here: the per-client limit) are answered for a burst, then dropped: they cannot be reflected either.
    const errors = got.filter((g) => g.p.op === Op.ERROR).length;
    assert.ok(errors <= 64 + 16, `${errors} ERROR replies: a burst of 64, then 16 a second`);
    // And what left is what /metrics counted.
    const after = await metrics();
    const delta = (name: string): number => sample(after, name) - sample(before, name);
    const dataBytes = got.filter((g) => g.p.op === Op.DATA).reduce((n, g) => n + g.raw.length - 4, 0);
    assert.equal(delta('heph_tftp_bytes_sent_total'), dataBytes);
    assert.equal(delta('heph_tftp_retransmits_total'), got.filter((g) => g.p.op === Op.DATA).length - byTid.size);
    assert.equal(delta('heph_tftp_transfers_total{outcome="timeout"}'), byTid.size);
    // Every refusal is counted, answered or not (requests the kernel dropped from a full socket buffer are not).
    assert.ok(delta('heph_tftp_errors_total{kind="reply_rate_limited"}') > 0, 'replies were dropped');
    assert.equal(delta('heph_tftp_errors_total{kind="busy"}'), errors + delta('heph_tftp_errors_total{kind="reply_rate_limited"}'));
  } finally {
    await Promise.all(victims.map((v) => v.close()));
  }
});
