// Asset bytes by sendfile(2) through the worker pump, checked with real clients: curl (whole, ranges, two requests on
// one kept-alive connection, many at once, a client that gives up half-way) and raw sockets (one that stops reading,
// one that pipelines).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { importRelease } from '../../src/assets/import.ts';
import Fastify from 'fastify';
import { FilePump, sendFileRange } from '../../src/http/sendfile.ts';
import { inProcessHeph, tempDir } from '../helpers/heph.ts';
import { httpExchange } from '../helpers/net.ts';

const run = promisify(execFile);
const SIZE = 24 * 1024 * 1024 + 12345; // not a multiple of anything the pump slices by
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const openFds = (): number => readdirSync('/proc/self/fd').length;

async function curl(args: string[]): Promise<{ out: Buffer; code: number }> {
  try {
    const { stdout } = await run('curl', ['-s', '--noproxy', '*', ...args], { encoding: 'buffer', maxBuffer: 1 << 30 });
    return { out: stdout, code: 0 };
  } catch (err) {
    return { out: (err as { stdout: Buffer }).stdout, code: (err as { code: number }).code };
  }
}

describe('assets by sendfile', () => {
  const dir = tempDir('heph-sendfile-');
  const bytes = randomBytes(SIZE);
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  let url = '';

  before(async () => {
    const release = join(dir.path, 'v1.13.9');
    mkdirSync(release);
    writeFileSync(join(release, 'initramfs-amd64.xz'), bytes);
    writeFileSync(join(release, 'sha512sum.txt'), `${createHash('sha512').update(bytes).digest('hex')}  initramfs-amd64.xz\n`);
    chmodSync(release, 0o755);
    heph = await inProcessHeph();
    const [asset] = await importRelease({ db: heph.daemon.ctx.db, dataDir: heph.daemon.ctx.dataDir, source: release });
    url = `${heph.url}/assets/${asset!.id.slice(0, 64)}/${asset!.name}`;
  });
  after(async () => {
    await heph.stop();
    dir.remove();
  });

  test('a whole download is byte-identical and its Content-Length is exact', async () => {
    const { out, code } = await curl(['-D', '-', url]);
    assert.equal(code, 0);
    const split = out.indexOf('\r\n\r\n');
    const head = out.subarray(0, split).toString();
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, new RegExp(`content-length: ${SIZE}\\r?$`, 'im'));
    assert.equal(sha(out.subarray(split + 4)), sha(bytes));
  });

  test('ranges that start and end anywhere come back exact (206, Content-Range)', async () => {
    for (const [start, end] of [[1, SIZE - 2], [65535, 65536 + 3 * 1024 * 1024], [SIZE - 70_000, SIZE - 1], [10, 20]] as const) {
      const { out, code } = await curl(['-r', `${start}-${end}`, '-w', '%{http_code}', url]);
      assert.equal(code, 0);
      assert.equal(out.subarray(out.length - 3).toString(), '206');
      assert.equal(sha(out.subarray(0, out.length - 3)), sha(bytes.subarray(start, end + 1)), `${start}-${end}`);
    }
  });

  test('two downloads on one kept-alive connection: the second response follows the first cleanly', async () => {
    const { out, code } = await curl(['-w', '%{num_connects}\\n', url, '-w', '%{num_connects}\\n', url]);
    assert.equal(code, 0);
    // curl prints body, "1", body, "0": the second transfer reused the connection.
    assert.equal(out.length, 2 * SIZE + 4);
    assert.equal(sha(out.subarray(0, SIZE)), sha(bytes));
    assert.equal(out.subarray(SIZE, SIZE + 2).toString(), '1\n');
    assert.equal(sha(out.subarray(SIZE + 2, 2 * SIZE + 2)), sha(bytes));
    assert.equal(out.subarray(2 * SIZE + 2).toString(), '0\n');
  });

  test('20 at once, some slow, some giving up half-way: the rest are exact and no descriptor leaks', async () => {
    const before = openFds();
    const jobs = Array.from({ length: 20 }, (_, i) =>
      i % 4 === 3 ? curl(['--limit-rate', '2M', '--max-time', '1', '-o', '/dev/null', url]) : curl(i % 4 === 0 ? ['--limit-rate', '20M', url] : [url]),
    );
    const results = await Promise.all(jobs);
    for (const [i, r] of results.entries()) {
      if (i % 4 === 3) assert.equal(r.code, 28, 'curl gave up (timeout)');
      else assert.equal(sha(r.out), sha(bytes), `download ${i}`);
    }
    // The server notices the aborted ones when its next sendfile fails; give it a moment.
    for (let i = 0; i < 50 && openFds() > before; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(openFds() <= before, `descriptors: ${before} before, ${openFds()} after`);
    const again = await curl([url]);
    assert.equal(sha(again.out), sha(bytes));
  });

  test('a reader that stops reading is dropped after the idle time, and its descriptor closed', async () => {
    const pump = new FilePump(500);
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    const client = createConnection((server.address() as { port: number }).port, '127.0.0.1');
    client.pause(); // never reads: the kernel buffers fill and sendfile waits for room that never comes
    const sock = await accepted;
    const fh = await open(join(dir.path, 'big'), 'w+');
    await fh.write(bytes);
    try {
      const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
      assert.equal((await pump.send(fd, fh.fd, 0, 0).done).ok, true); // starts the worker (its eventfd, its epoll)
      const before = openFds();
      const job = pump.send(fd, fh.fd, 0, SIZE);
      const r = await job.done;
      assert.equal(r.ok, false);
      assert.match(r.error ?? '', /read nothing for 0\.5 s/);
      assert.ok(r.sent > 0 && r.sent < SIZE, `sent ${r.sent}`);
      assert.equal(openFds(), before, 'the pump closed its duplicate of the socket');
    } finally {
      await pump.stop();
      await fh.close();
      client.destroy();
      sock.destroy();
      server.close();
    }
  });
});

describe('sendFileRange on a bare Fastify app', () => {
  const dir = tempDir('heph-sendfile-range-');
  const big = randomBytes(SIZE);
  const small = randomBytes(1000);
  const app = Fastify();
  let port = 0;
  let released = 0;
  let streamed = 0;

  before(async () => {
    writeFileSync(join(dir.path, 'big'), big);
    writeFileSync(join(dir.path, 'small'), small);
    for (const [name, bytes] of [['big', big], ['small', small]] as const) {
      app.get(`/${name}`, async (_req, reply) => {
        const fh = await open(join(dir.path, name));
        // Counts the responses that fall back to streaming through JavaScript.
        const stream = fh.createReadStream.bind(fh);
        fh.createReadStream = ((o: Parameters<FileHandle['createReadStream']>[0]) => (streamed++, stream(o))) as FileHandle['createReadStream'];
        reply.header('content-length', bytes.length);
        await sendFileRange(reply, fh, 0, bytes.length - 1, async () => {
          released++;
          await fh.close();
        });
        return reply;
      });
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as { port: number }).port;
  });
  after(async () => {
    await app.close();
    dir.remove();
  });

  /** Sends `raw` on a connection of its own and collects `count` responses' bodies. */
  async function exchange(raw: string, count: number): Promise<Buffer[]> {
    const sock = createConnection(port, '127.0.0.1');
    try {
      return (await httpExchange(sock, raw, count)).map((r) => r.body);
    } finally {
      sock.destroy();
    }
  }

  test('pipelined requests: each response waits for the connection and still goes by sendfile, then releases its file', async () => {
    released = streamed = 0;
    const get = 'GET /big HTTP/1.1\r\nHost: heph\r\n\r\n';
    const bodies = await exchange(get.repeat(3), 3);
    assert.deepEqual(bodies.map(sha), [sha(big), sha(big), sha(big)]);
    assert.equal(streamed, 0, 'responses queued behind another were streamed through JavaScript');
    assert.equal(released, 3);
  });

  test('a small file is streamed, and its file is released when the response ends', async () => {
    released = streamed = 0;
    const bodies = await exchange('GET /small HTTP/1.1\r\nHost: heph\r\n\r\n'.repeat(2), 2);
    assert.deepEqual(bodies.map(sha), [sha(small), sha(small)]);
    assert.equal(streamed, 2);
    for (let i = 0; i < 50 && released < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(released, 2);
  });

  test('a response queued behind one whose client goes away is released, never sent', async () => {
    released = streamed = 0;
    const sock = createConnection(port, '127.0.0.1');
    sock.pause(); // the first response fills the buffers and stalls, so the second stays queued
    sock.write('GET /big HTTP/1.1\r\nHost: heph\r\n\r\n'.repeat(2));
    await new Promise((r) => setTimeout(r, 300));
    sock.destroy();
    for (let i = 0; i < 100 && released < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(released, 2);
    assert.equal(streamed, 0);
  });
});
