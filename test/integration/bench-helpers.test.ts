// The boot storm's C helpers in their many-at-once modes, against real servers on loopback: the TFTP client's
// storm mode (-S) against heph's TFTP, the HTTP client against a Node HTTP server that misbehaves on request.
// What they report is what the storm bench publishes, so each outcome is checked against what the server did.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { buildC } from '../../bench/c-stage.ts';
import { httpStage } from '../../bench/storm/http-stage.ts';
import { tftpStorm, wordHash } from '../../bench/tftp-client.ts';
import { inProcessHeph, tempDir } from '../helpers/heph.ts';
import { tftpOf } from './tftp-raw.ts';

const dir = tempDir('heph-bench-helpers-');
const tftpBin = buildC(dir.path, 'tftp-client');
const httpBin = buildC(dir.path, 'http-client');
after(() => dir.remove());

describe('tftp-client -S: many fetches at once, each from its own address', { skip: 'missing' in tftpBin && tftpBin.missing }, () => {
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  let port = 0;
  const file = randomBytes(300_000);
  before(async () => {
    heph = await inProcessHeph({ tftp: { enabled: true, port: 0, addresses: ['127.0.0.1'], maxTransfersPerClient: 1 } });
    const tftp = tftpOf(heph.daemon);
    port = tftp.listening()[0]!.port;
    tftp.files.register('boot.efi', file);
  });
  after(() => heph.stop());

  test('40 concurrent fetches from 40 source addresses all get the file; a missing file and an unusable address fail alone', async () => {
    const path = 'path' in tftpBin ? tftpBin.path : '';
    const stage = tftpStorm(path, '127.0.0.1', port, 'boot.efi', { blksize: 1468, windowsize: 4, tsize: true, timeoutMs: 2000, retries: 3 });
    // One transfer per client is allowed: the fetches only all succeed if each really comes from its own address.
    const fetches = await Promise.all(Array.from({ length: 40 }, (_, i) => stage.request(`127.0.0.${i + 2}`)));
    await assert.rejects(stage.request('192.0.2.1'), /bind to the source address/);
    const cpu = await stage.end();
    for (const f of fetches) {
      assert.equal(f.bytes, file.length);
      assert.equal(f.hash, wordHash(file));
      assert.ok(f.seconds > 0 && f.seconds < 10);
    }
    assert.ok(cpu >= 0, `the cpu line arrives at the end: ${cpu}`);
    const missing = tftpStorm(path, '127.0.0.1', port, 'nope.efi', { blksize: 1468, timeoutMs: 2000, retries: 3 });
    await assert.rejects(missing.request('127.0.0.2'), /server ERROR 1/);
    await missing.end();
  });
});

describe('http-client: downloads counted in the kernel, every way a response can go wrong reported', { skip: 'missing' in httpBin && httpBin.missing }, () => {
  let server: Server;
  let base = '';
  const seen: string[] = [];
  const body = randomBytes(3 << 20);
  before(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.socket.remoteAddress} ${req.url}`);
      if (req.url === '/file') return res.writeHead(200, { 'content-length': body.length }).end(body);
      if (req.url === '/short') {
        res.writeHead(200, { 'content-length': 1000 }).write(Buffer.alloc(400));
        return setTimeout(() => res.destroy(), 50);
      }
      if (req.url === '/chunked') return res.writeHead(200).end('no length given');
      if (req.url === '/silent') return;
      res.writeHead(404, { 'content-length': 9 }).end('not here\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('status, byte count and source address as the server saw them; short, unframed, refused and silent responses fail', async () => {
    const stage = httpStage('path' in httpBin ? httpBin.path : '', 1500);
    const [file, missing] = await Promise.all([stage.request(`127.0.0.7 ${base}/file`), stage.request(`127.0.0.8 ${base}/missing`)]);
    assert.equal(file.status, 200);
    assert.equal(file.bytes, body.length);
    assert.ok(file.ms > 0);
    assert.deepEqual([missing.status, missing.bytes], [404, 9]);
    assert.deepEqual(seen.slice(0, 2).sort(), ['127.0.0.7 /file', '127.0.0.8 /missing']);
    await assert.rejects(stage.request(`127.0.0.9 ${base}/short`), /body of 400 bytes, Content-Length 1000/);
    await assert.rejects(stage.request(`127.0.0.9 ${base}/chunked`), /200 without Content-Length/);
    await assert.rejects(stage.request('127.0.0.9 http://127.0.0.1:1/x'), /Connection refused/);
    await assert.rejects(stage.request(`127.0.0.9 ${base}/silent`), /timed out/);
    assert.ok((await stage.end()) >= 0);
  });
});
