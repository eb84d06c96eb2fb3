// The DHCP data plane survives its worker dying: the main thread keeps the sockets, starts a new worker after a
// backoff (1 s, doubling), hands it the current rejection set, and the same socket answers again. Loopback only:
// a plain UDP socket on 127.0.0.1 stands in for the device-bound ones (the worker serves any datagram socket).
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decode, MessageType, Opt } from '../../src/dhcp/codec.ts';
import { DataPath } from '../../src/dhcp/datapath.ts';
import { boundPort, boundUdpSocket, loadSys } from '../../src/net/syscalls.ts';
import { priorityShortfall } from '../../src/threads.ts';
import { ovmfBootServerRequest, packet, UUID } from '../unit/dhcp-fixtures.ts';

const sys = loadSys();
const { fd } = boundUdpSocket(sys, '127.0.0.1');
const port = boundPort(sys, fd);
const client = createSocket('udp4');
client.bind(0, '127.0.0.1');
after(() => {
  client.close();
  sys.close(fd);
});

/** A boot-server REQUEST to the data plane's socket; the ACK, or undefined after `ms`. */
async function ask(ms = 1500): Promise<Buffer | undefined> {
  const reply = once(client, 'message').then(([m]) => m as Buffer);
  client.send(packet(ovmfBootServerRequest(), { ciaddr: [127, 0, 0, 1] }), port, '127.0.0.1');
  return Promise.race([reply, sleep(ms).then(() => undefined)]);
}

/**
 * Termination takes effect when the worker runs JavaScript, not while it sleeps in poll(): a datagram wakes it, so
 * it dies at an ordinary moment of its loop.
 */
async function kill(dp: DataPath): Promise<void> {
  const dead = (dp as unknown as { sup: { worker: { terminate(): Promise<number> } } }).sup.worker.terminate();
  client.send(Buffer.from('wake up'), port, '127.0.0.1');
  await dead;
}

test('a dead data-plane worker is replaced, with the current rejections, and the same socket answers again', async () => {
  const events: string[] = [];
  // Raising a thread's priority needs root: elsewhere the check below has nothing to see.
  const boost = process.getuid?.() === 0 ? 3 : 0;
  const dp = await DataPath.start(
    {
      sockets: [{ fd, iface: 0, via: 'proxy' }],
      configs: [{ server: '127.0.0.1', httpPort: 8080, binaries: { bios: 'undionly.kpxe', x86_64: 'ipxe.efi' }, option43: {}, relays: [], relayPort: 67 }],
      rejections: { uuids: [], nics: [] },
      batch: 8,
      flushMs: 20,
    },
    {
      outcomes: () => {},
      socketError: (_i, message) => events.push(`socket-error ${message}`),
      died: (err, retryMs) => events.push(`died ${retryMs} ${err.message}`),
      restarted: () => events.push('restarted'),
    },
    boost,
  );
  try {
    const first = await ask();
    assert.ok(first, 'the first worker answers');
    const ack = decode(first);
    assert.ok(ack.ok);
    assert.equal(ack.packet.options.get(Opt.MESSAGE_TYPE)?.[0], MessageType.ACK);

    await kill(dp);
    await sleep(100);
    assert.deepEqual(events, ['died 1000 the DHCP data-plane worker exited']);
    assert.equal(await ask(300), undefined, 'nobody answers while the worker is down');

    // Rejected while no worker runs: the successor must know.
    dp.setRejections({ uuids: [UUID], nics: [] });
    for (let i = 0; i < 50 && !events.includes('restarted'); i++) await sleep(100);
    assert.deepEqual(events, ['died 1000 the DHCP data-plane worker exited', 'restarted']);
    assert.equal(await ask(500), undefined, 'the rejected machine stays unanswered by the new worker');
    dp.setRejections({ uuids: [], nics: [] });
    assert.ok(await ask(), 'the new worker answers on the same socket');
    assert.equal(priorityShortfall('heph-dhcp', boost), undefined, 'the new worker runs at the raised priority too');

    // A second death soon after the first backs off further.
    await kill(dp);
    await sleep(100);
    assert.equal(events.at(-1), 'died 2000 the DHCP data-plane worker exited');
  } finally {
    await dp.stop();
  }
  // stop() during the backoff cancels the restart.
  await sleep(2500);
  assert.equal(events.at(-1), 'died 2000 the DHCP data-plane worker exited');
});
