// TFTP fails loudly at start: missing iPXE binaries, an address it cannot answer from, a port in use.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { StartupError } from '../../src/errors.ts';
import { inProcessHeph, tempDir } from '../helpers/heph.ts';
import { tftpOf } from './tftp-raw.ts';

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
