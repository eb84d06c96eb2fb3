// Batched UDP I/O (src/net/udp-batch.ts) against the kernel on loopback: recvmmsg, sendmmsg, poll, eventfd.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { deviceFd } from '../../src/dhcp/device-socket.ts';
import { eventfdClear, eventfdCreate, eventfdSignal, loadSys } from '../../src/net/syscalls.ts';
import { DatagramSlots, Poller } from '../../src/net/udp-batch.ts';

const sys = loadSys();

const root = process.getuid?.() === 0;
const PORT = 40000 + (process.pid % 20000);
const opened: number[] = [];
after(() => opened.forEach((fd) => sys.close(fd)));

async function client(): Promise<{ sock: dgram.Socket; port: number; got: Buffer[] }> {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { sock, port: sock.address().port, got };
}

it('receives a burst in one recvmmsg, answers it in one sendmmsg, and reports the datagrams the kernel refused', { skip: !root && 'SO_BINDTODEVICE needs root' }, async () => {
  const fd = deviceFd('lo', PORT);
  opened.push(fd);
  const rx = new DatagramSlots(16, 2048);
  const tx = new DatagramSlots(16, 1472);
  const poller = new Poller([fd]);
  const c = await client();
  try {
    assert.equal(rx.receive(fd), 0, 'nothing queued: no wait');
    for (let i = 0; i < 10; i++) c.sock.send(Buffer.from(`hello ${i}`), PORT, '127.0.0.1');
    c.sock.send(Buffer.alloc(3000, 7), PORT, '127.0.0.1');
    await sleep(200);
    assert.equal(poller.wait(1000), 1);
    assert.ok(poller.ready(0));
    const n = rx.receive(fd);
    assert.equal(n, 11, 'all queued datagrams in one call');
    for (let i = 0; i < 10; i++) {
      assert.equal(rx.datagram(i).toString(), `hello ${i}`);
      assert.equal(rx.truncated(i), false);
      assert.equal(rx.address(i), 0x7f000001);
      assert.equal(rx.port(i), c.port);
    }
    assert.equal(rx.truncated(10), true, 'longer than the slot: flagged, not silently cut');
    assert.equal(rx.datagram(10).length, 2048);
    assert.equal(poller.wait(0), 0, 'drained');

    for (let i = 0; i < 5; i++) {
      const reply = Buffer.from(`reply ${i}`);
      reply.copy(tx.slot(i));
      // Slot 2 goes to port 0, which the kernel refuses.
      tx.prepare(i, reply.length, 0x7f000001, i === 2 ? 0 : c.port);
    }
    const errors: [number, number][] = [];
    tx.send(fd, 5, (errno, slot) => errors.push([errno, slot]));
    assert.deepEqual(errors, [[22, 2]], 'EINVAL for slot 2 only');
    await sleep(200);
    assert.deepEqual(c.got.map(String).sort(), ['reply 0', 'reply 1', 'reply 3', 'reply 4']);
  } finally {
    c.sock.close();
  }
});

it('an eventfd wakes a poll() that waits forever, and draining it makes it quiet again', () => {
  const efd = eventfdCreate(sys);
  opened.push(efd);
  const poller = new Poller([efd]);
  assert.equal(poller.wait(0), 0);
  eventfdSignal(sys, efd);
  eventfdSignal(sys, efd);
  assert.equal(poller.wait(-1), 1);
  eventfdClear(sys, efd);
  assert.equal(poller.wait(0), 0);
});
