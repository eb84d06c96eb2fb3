import { inProcessHeph } from './test/helpers/heph.ts';
import { RawPeer, ack, tftpOf } from './test/integration/tftp-raw.ts';
import { execFile } from 'node:child_process';
const h = await inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'] } } as any);
const t = tftpOf(h.daemon); const port = t.listening()[0]!.port;
t.files.register('1m.bin', '/tmp/tftpwork/1m.bin');
for (let i = 0; i < 4; i++) {
  const peer = await RawPeer.open();
  const t0 = performance.now();
  peer.rrq(port, '1m.bin', [['blksize', '1468'], ['tsize', '0']]);
  const o = await peer.next(); const t1 = performance.now();
  peer.send(ack(0), o.port);
  let b = 0;
  for (;;) { const d = await peer.next(); b++; peer.send(ack(b & 0xffff), o.port); if (d.p.op === 3 && d.p.data.length < 1468) break; }
  const t2 = performance.now();
  console.log('oack', (t1 - t0).toFixed(1), 'ms; data', (t2 - t1).toFixed(1), 'ms', b, 'blocks');
  await peer.close();
}
for (let i = 0; i < 4; i++) {
  const t0 = performance.now();
  await new Promise((r) => execFile('curl', ['-sS', '--tftp-blksize', '1468', '-o', '/dev/null', `tftp://127.0.0.1:${port}/1m.bin`], r));
  const t1 = performance.now();
  await new Promise((r) => execFile('curl', ['-sS', '-o', '/dev/null', `http://127.0.0.1:${h.daemon.ctx.http.port}/healthz`], r));
  console.log('curl tftp', (t1 - t0).toFixed(1), 'ms; curl http healthz', (performance.now() - t1).toFixed(1));
}
await h.stop();
