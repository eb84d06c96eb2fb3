// TFTP fails loudly at start: missing iPXE binaries, an address it cannot answer from, a port in use; and it
// stops cleanly, telling the clients of running transfers.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { StartupError } from '../../src/errors.ts';
import { inProcessHeph, tempDir } from '../helpers/heph.ts';
import { ErrorCode, Op } from '../../src/tftp/codec.ts';
import { RawPeer, tftpOf } from './tftp-raw.ts';

test('a missing iPXE binary stops startup and names the setting', async () => {
  const empty = tempDir('heph-tftp-noipxe-');
  try {
    await assert.rejects(inProcessHeph({ ipxe: { dir: empty.path }, tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'] } }), (err: unknown) => {
      assert.ok(err instanceof StartupError);
      assert.match(err.message, /ipxe\.bios: the iPXE binary .*undionly\.kpxe cannot be served/);
      return true;
    });
  } finally {
    empty.remove();
  }
});

test('0.0.0.0 is refused: every transfer must answer from the address its request used', async () => {
  await assert.rejects(inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['0.0.0.0'] } }), (err: unknown) => err instanceof StartupError && /tftp\.addresses: 0\.0\.0\.0/.test(err.message));
});

test('a port in use is a clear startup error', async () => {
  const squatter = createSocket('udp4');
  await new Promise<void>((r) => squatter.bind(0, '127.0.0.1', r));
  try {
    await assert.rejects(inProcessHeph({ tftp: { enabled: true, port: squatter.address().port, addresses: ['127.0.0.1'] } }), (err: unknown) => err instanceof StartupError && /tftp: cannot listen on UDP 127\.0\.0\.1:\d+: the port is already in use/.test(err.message));
  } finally {
    squatter.close();
  }
});

test('the iPXE binaries are served under their configured names; health lists the sockets', async () => {
  const heph = await inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'] } });
  try {
    const tftp = tftpOf(heph.daemon);
    assert.deepEqual(tftp.files.names(), ['ipxe.efi', 'undionly.kpxe']);
    const h = tftp.health();
    assert.equal(h.state, 'up');
    assert.equal(h.listening?.udp, `127.0.0.1:${tftp.listening()[0]!.port}`);
  } finally {
    await heph.stop();
  }
});

test('stopping mid-transfer tells the client (ERROR 0), closes the transfer and records the abort', async () => {
  const heph = await inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'], retryTimeoutMs: 5000 } });
  const peer = await RawPeer.open();
  try {
    const tftp = tftpOf(heph.daemon);
    tftp.files.register('x.bin', randomBytes(10_000));
    const { machine } = heph.daemon.ctx.machines.resolve({ mac: '52:54:00:00:00:09', ip: '127.0.0.1' });
    peer.rrq(tftp.listening()[0]!.port, 'x.bin');
    const d1 = await peer.next();
    assert.ok(d1.p.op === Op.DATA && d1.p.block === 1);
    await tftp.stop();
    const e = await peer.next();
    assert.ok(e.p.op === Op.ERROR && e.p.code === ErrorCode.UNDEFINED && e.p.message === 'heph is stopping', JSON.stringify(e.p));
    assert.equal(e.port, d1.port, 'from the transfer socket');
    assert.equal(tftp.health().state, 'stopped');
    heph.daemon.ctx.writer.flush();
    const events = heph.daemon.ctx.timeline.list(machine.id).map((ev) => [ev.kind, ev.data.reason]);
    assert.deepEqual(events, [['tftp.start', undefined], ['tftp.abort', 'stopped']]);
    // The transfer socket is gone: an ACK to it draws nothing.
    peer.send(Buffer.from([0, Op.ACK, 0, 1]), d1.port);
    assert.deepEqual(await peer.collect(200), []);
  } finally {
    await peer.close();
    await heph.stop();
  }
});
