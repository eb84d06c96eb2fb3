// The TFTP data plane survives its worker dying: the transfers it carried end in the timeline and metrics, its
// sockets are closed (no descriptor leaks, the port can be bound again), a new worker listens after a backoff, and
// a real client (curl) downloads again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inProcessHeph, tempDir } from '../helpers/heph.ts';
import { run, tftpOf } from './tftp-raw.ts';

const dir = tempDir('heph-tftp-restart-');
after(() => dir.remove());

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('a dead TFTP worker is replaced: sockets closed, same port bound again, downloads work again', async () => {
  const data = randomBytes(300_000);
  const heph = await inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'] } });
  try {
    const tftp = tftpOf(heph.daemon);
    tftp.files.register('boot.bin', data);
    const get = async (): Promise<Buffer> => {
      const out = join(dir.path, `out-${Math.random()}`);
      await run('curl', ['-sS', '--max-time', '20', '-o', out, `tftp://127.0.0.1:${tftp.listening()[0]!.port}/boot.bin`]);
      return readFileSync(out);
    };
    // curl leaves once it has sent its last ACK; the transfer's socket closes when the worker reads that ACK, which
    // on a loaded machine can be a moment later. Descriptors are counted once no transfer is open.
    const settled = async (): Promise<void> => {
      for (let i = 0; i < 100 && !/\b0 active transfers/.test(tftp.health().detail ?? ''); i++) await sleep(20);
      assert.match(tftp.health().detail ?? '', /\b0 active transfers/);
    };
    assert.ok((await get()).equals(data));
    await settled();
    const fdsBefore = openFds();

    const plane = (tftp as unknown as { plane: { worker: { terminate(): Promise<number> } } }).plane;
    // Termination takes effect when the worker runs JavaScript, not while it sleeps in epoll_wait: a message (a
    // file registered) wakes it, so it dies at an ordinary moment of its loop.
    const dead = plane.worker.terminate();
    tftp.files.register('other.bin', Buffer.alloc(1));
    await dead;
    await sleep(100);
    const down = tftp.health();
    assert.equal(down.state, 'failed');
    assert.match(down.detail ?? '', /restarting in 1000 ms/);

    for (let i = 0; i < 50 && tftp.health().state !== 'up'; i++) await sleep(100);
    assert.equal(tftp.health().state, 'up', 'a new worker serves after the backoff');
    assert.ok((await get()).equals(data), 'byte-identical download from the new worker');
    await settled();
    // The dead worker's listener and epoll set were closed (left open they would add two to the new worker's).
    assert.ok(openFds() <= fdsBefore, `descriptors: ${fdsBefore} before, ${openFds()} after`);
    const metrics = await (await fetch(`${heph.url}/metrics`)).text();
    assert.match(metrics, /heph_tftp_dataplane_restarts_total 1\b/);
  } finally {
    await heph.stop();
  }
});
