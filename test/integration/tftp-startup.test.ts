// TFTP fails loudly at start: missing iPXE binaries, an address it cannot answer from, a port in use; it stops
// cleanly, telling the clients of running transfers; and its packet thread runs ahead of the rest of heph.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { getPriority } from 'node:os';
import { test } from 'node:test';
import { StartupError } from '../../src/errors.ts';
import { threadNice } from '../../src/threads.ts';
import { inProcessHeph, spawnHeph, tempDir } from '../helpers/heph.ts';
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

const ROOT = process.getuid?.() === 0 ? false : 'needs root (raising a priority, taking a capability away)';

test('the TFTP packet thread runs threads.packetPriority nice levels above heph; 0 leaves it level with the rest', { skip: ROOT }, async () => {
  const own = getPriority(0);
  for (const [boost, want] of [
    [10, Math.max(-20, own - 10)],
    [0, own],
  ] as const) {
    const heph = await inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'] }, threads: { packetPriority: boost } });
    try {
      assert.equal(threadNice('heph-tftp'), want, `packetPriority ${boost}`);
    } finally {
      await heph.stop();
    }
  }
});

test('without CAP_SYS_NICE heph still serves TFTP, at its own priority, and its log says why and which setting', { skip: ROOT }, async () => {
  // Root without CAP_SYS_NICE: dropped from the inheritable and bounding sets, so heph's node never has it.
  const heph = await spawnHeph(
    { log: { level: 'info' }, http: { listen: '127.0.0.1', port: 0 }, grpc: { listen: '127.0.0.1', port: 0 }, kmsg: { listen: '127.0.0.1', port: 0 }, tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'] } },
    { wrapper: ['setpriv', '--inh-caps=-sys_nice', '--bounding-set=-sys_nice'] },
  );
  try {
    const warning = heph.logs.find((l) => l.level === 'warn' && l.svc === 'tftp');
    assert.ok(warning, JSON.stringify(heph.logs.slice(-4)));
    assert.match(String(warning.msg), /^TFTP transfers run at normal priority: heph-tftp runs at nice -?\d+, not -?\d+: raising a thread's priority needs root or CAP_SYS_NICE$/);
    assert.equal(warning.setting, 'threads.packetPriority');
    const tftpNice = threadNice('heph-tftp', heph.proc.pid!);
    assert.equal(typeof tftpNice, 'number', 'heph-tftp is running');
    assert.equal(tftpNice, threadNice('heph-sendfile', heph.proc.pid!), 'level with the rest of heph');
    const up = heph.logs.find((l) => l.msg === 'heph is up') as { services: { tftp: { listening: { udp: string } } } };
    const got = execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', `tftp://${up.services.tftp.listening.udp}/ipxe.efi`], { encoding: 'utf8' });
    assert.equal(Number(got), statSync('/usr/lib/ipxe/ipxe.efi').size, 'a real client gets the whole binary');
  } finally {
    await heph.stop();
  }
});
