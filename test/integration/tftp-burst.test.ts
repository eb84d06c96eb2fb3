// A rack powered on together sends its RRQs together: every one must reach heph (and be served or refused),
// none may be lost in the kernel because the request socket's buffer was full. Each lost RRQ is a machine that
// waits out its firmware's retransmit timeout, seconds, in the middle of a boot storm.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { encodeRequest, Op } from '../../src/tftp/codec.ts';
import { inProcessHeph } from '../helpers/heph.ts';
import { RawPeer, sample, tftpOf } from './tftp-raw.ts';

type Heph = Awaited<ReturnType<typeof inProcessHeph>>;
let heph: Heph;
let port = 0;
const BURST = 3000;

before(async () => {
  heph = await inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'], maxTransfers: BURST, maxTransfersPerClient: BURST, retryTimeoutMs: 200, retries: 0 } });
  const tftp = tftpOf(heph.daemon);
  port = tftp.listening()[0]!.port;
  tftp.files.register('one-block.bin', Buffer.alloc(100, 7));
});

after(async () => {
  await heph.stop();
});

test(`a burst of ${BURST} RRQs sent back to back: every one is received`, async () => {
  // Received = started + repeated (a second RRQ from a source whose transfer still runs is counted and ignored).
  const received = async (): Promise<{ started: number; all: number }> => {
    const m = await (await fetch(`${heph.url}/metrics`)).text();
    const started = sample(m, 'heph_tftp_transfers_started_total');
    return { started, all: started + sample(m, 'heph_tftp_errors_total{kind="duplicate_request"}') };
  };
  const peers = await Promise.all(Array.from({ length: 300 }, () => RawPeer.open('127.0.0.5')));
  const before = await received();
  try {
    const rrq = encodeRequest(Op.RRQ, 'one-block.bin', 'octet');
    for (let i = 0; i < BURST; i++) peers[i % peers.length]!.send(rrq, port);
    let now = before;
    for (let waited = 0; waited < 10_000 && now.all - before.all < BURST; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      now = await received();
    }
    assert.equal(now.all - before.all, BURST, `${BURST - (now.all - before.all)} requests were lost before heph read them`);
    const got = (await Promise.all(peers.map((p) => p.collect(0)))).flat();
    assert.equal(got.filter((g) => g.p.op === Op.DATA).length, now.started - before.started, 'each transfer started sent its block');
  } finally {
    await Promise.all(peers.map((p) => p.close()));
  }
});
