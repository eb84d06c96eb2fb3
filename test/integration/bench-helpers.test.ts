// The boot storm's C helpers in their many-at-once modes, against real servers on loopback: the TFTP client's
// storm mode (-S) against heph's TFTP, the HTTP client against a Node HTTP server that misbehaves on request, the
// gRPC client against heph's Talos event sink.
// What they report is what the storm bench publishes, so each outcome is checked against what the server did.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildC } from '../../bench/c-stage.ts';
import { peakRss, procUsage } from '../../bench/lib.ts';
import { grpcStage } from '../../bench/storm/grpc-stage.ts';
import { httpStage } from '../../bench/storm/http-stage.ts';
import { tftpFloor, tftpPass, tftpPhase } from '../../bench/storm/tftp-alone.ts';
import { tftpStorm, wordHash } from '../../bench/tftp-client.ts';
import type { EventsService } from '../../src/events/index.ts';
import { PUBLISH_PATH } from '../../src/events/sink.ts';
import { inProcessHeph, REPO, tempDir } from '../helpers/heph.ts';
import { eventRequest, INSTALL_RUN, xids } from '../helpers/talos-events.ts';
import { tftpOf } from './tftp-raw.ts';

const dir = tempDir('heph-bench-helpers-');
const PAGE = '#!ipxe\nkernel http://10.0.0.1/k talos.config=http://10.0.0.1/c?ü\n';
const tftpBin = buildC(dir.path, 'tftp-client');
const httpBin = buildC(dir.path, 'http-client');
const grpcBin = buildC(dir.path, 'grpc-client', ['-lnghttp2']);
after(() => dir.remove());

/** Starts `server` on a free loopback port; resolves with its base URL. */
async function listening(server: Server | ReturnType<typeof createTcpServer>): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

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

  test('the TFTP step alone: each server twice in mirrored order, each pass after the caller has read its counters, a helper per pass, failures counted, percentiles over both passes', async () => {
    const path = 'path' in tftpBin ? tftpBin.path : '';
    const ips = Array.from({ length: 12 }, (_, i) => `127.0.1.${i + 1}`);
    const files: Record<string, string> = { good: 'boot.efi', missing: 'nope.efi' };
    const seen: string[] = [];
    let helpers = 0;
    const results = await tftpPhase(
      ['good', 'missing'],
      (server) =>
        tftpPass(ips, 5, () => {
          seen.push(`fetch ${server}`);
          const stage = tftpStorm(path, '127.0.0.1', port, files[server]!, { blksize: 1468, windowsize: 4, tsize: true, timeoutMs: 2000, retries: 3, gro: true });
          helpers++;
          return { fetch: (ip) => stage.request(ip), end: () => stage.end() };
        }),
      async (server, phase) => {
        seen.push(`${phase} ${server}`);
        await sleep(20); // the bench reads heph's and dnsmasq's counters here, and nothing may be sent meanwhile
        seen.push('read');
      },
    );
    const order = ['good', 'missing', 'missing', 'good'].flatMap((s) => [`begin ${s}`, 'read', `fetch ${s}`, `end ${s}`, 'read']);
    assert.deepEqual(seen, order);
    assert.equal(helpers, 4, 'every pass starts a helper of its own');
    const [good, missing] = results;
    assert.equal(good!.server, 'good');
    assert.equal(good!.failures, 0);
    assert.ok(good!.bytesPerS > 0 && good!.p50 > 0 && good!.p99 >= good!.p50, JSON.stringify(good));
    assert.ok(good!.clientCpuS >= 0);
    assert.equal(good!.passes, 2);
    assert.ok(good!.seconds > 0 && Math.abs(good!.bytesPerS - (2 * ips.length * file.length) / good!.seconds) < 1e-6 * good!.bytesPerS);
    assert.equal(missing!.failures, 2 * ips.length);
    assert.equal(missing!.bytesPerS, 0);
  });

});

test("tftpFloor: a pass's CPU, the server's and the helper's over both passes, over the CPUs there are, beside how long each pass took", () => {
  const r = { server: 'heph', passes: 2, seconds: 2.4, bytesPerS: 1, failures: 0, p50: 0, p99: 0, clientCpuS: 1.8 };
  const f = tftpFloor(r, 2.2, 2)!;
  assert.ok(Math.abs(f.cpuS - 2) < 1e-9 && Math.abs(f.floorS - 1) < 1e-9 && Math.abs(f.wallS - 1.2) < 1e-9, JSON.stringify(f));
  assert.equal(tftpFloor(r, NaN, 2), undefined, 'without the server CPU there is no floor to give');
  assert.equal(tftpFloor({ ...r, clientCpuS: NaN }, 2.2, 2), undefined);
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
    base = await listening(server);
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

describe('http-client -k: small pages kept and handed back', { skip: 'missing' in httpBin && httpBin.missing }, () => {
  let server: Server;
  let base = '';
  before(async () => {
    server = createServer((req, res) => {
      const body = req.url === '/big' ? 'x'.repeat(5000) : PAGE;
      res.writeHead(req.url === '/gone' ? 410 : 200, { 'content-length': Buffer.byteLength(body) }).end(body);
    });
    base = await listening(server);
  });
  after(() => server.close());

  test('each body marked keep comes back whole, whatever its status; one longer than -k fails; unmarked or without -k none is kept', async () => {
    const path = 'path' in httpBin ? httpBin.path : '';
    const pages = httpStage(path, 1500, { keepBytes: 4096 });
    const got = await Promise.all(Array.from({ length: 30 }, (_, i) => pages.request(`127.0.0.${i + 2} ${base}/page keep`)));
    for (const g of got) assert.deepEqual([g.status, g.bytes, g.body], [200, Buffer.byteLength(PAGE), PAGE]);
    assert.deepEqual(await pages.request(`127.0.0.2 ${base}/gone keep`).then((g) => [g.status, g.body]), [410, PAGE]);
    await assert.rejects(pages.request(`127.0.0.2 ${base}/big keep`), /body longer than -k/);
    const unmarked = await pages.request(`127.0.0.2 ${base}/big`);
    assert.deepEqual([unmarked.bytes, unmarked.body], [5000, undefined]);
    assert.ok((await pages.end()) >= 0);
    const counted = httpStage(path, 1500);
    const plain = await counted.request(`127.0.0.2 ${base}/page`);
    assert.deepEqual([plain.bytes, plain.body], [Buffer.byteLength(PAGE), undefined]);
    await assert.rejects(counted.request(`127.0.0.2 ${base}/page keep`), /keep without -k/);
    await counted.end();
  });
});

describe('http-client -r: connections pooled per source and server, as iPXE pools them', { skip: 'missing' in httpBin && httpBin.missing }, () => {
  /**
   * A raw HTTP/1.1 server that numbers its connections and answers each request with `<connection>.<request on
   * it>`, keep-alive unless told otherwise: `/close` answers Connection: close, `/drop` on a connection's second
   * request closes it without a byte (a keep-alive timeout that crossed the request on the wire).
   */
  let server: ReturnType<typeof createTcpServer>;
  let base = '';
  let connections = 0;
  const log: string[] = [];
  before(async () => {
    server = createTcpServer((sock: Socket) => {
      const n = ++connections;
      let served = 0;
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        let end: number;
        while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
          const head = buf.slice(0, end);
          buf = buf.slice(end + 4);
          const url = head.split(' ')[1]!;
          served++;
          log.push(`${sock.remoteAddress} #${n} ${url} ${/connection: keep-alive/i.test(head) ? 'keep-alive' : 'close'}`);
          if (url === '/drop' && served === 2) return void sock.destroy();
          const body = `${n}.${served}`;
          const close = url === '/close';
          sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: ${close ? 'close' : 'keep-alive'}\r\n\r\n${body}`);
          if (close) sock.end();
        }
      });
      sock.on('error', () => {});
    });
    base = await listening(server);
  });
  after(() => server.close());

  test('one connection per source for a keep-alive server; fresh, Connection: close and a dropped pooled connection each open a new one', async () => {
    const path = 'path' in httpBin ? httpBin.path : '';
    const stage = httpStage(path, 1500, { keepBytes: 64, pooled: true });
    const get = async (line: string): Promise<string> => (await stage.request(`${line} keep`)).body!;
    // Two machines, three requests each, interleaved: each keeps its own connection.
    const a = [await get(`127.0.0.21 ${base}/a1`), await get(`127.0.0.22 ${base}/b1`), await get(`127.0.0.21 ${base}/a2`), await get(`127.0.0.22 ${base}/b2`)];
    const [ca, cb] = [a[0]!.split('.')[0], a[1]!.split('.')[0]];
    assert.notEqual(ca, cb);
    assert.deepEqual(a, [`${ca}.1`, `${cb}.1`, `${ca}.2`, `${cb}.2`]);
    assert.ok(log.every((l) => l.endsWith('keep-alive')), 'every request asks for keep-alive');
    // `fresh` (another program on the machine) does not take the pooled connection.
    const fresh = await stage.request(`127.0.0.21 ${base}/f fresh keep`);
    assert.equal(fresh.body, `${connections}.1`);
    // A server that says close is not asked again on that connection.
    const closing = await get(`127.0.0.23 ${base}/close`);
    const after = await get(`127.0.0.23 ${base}/x`);
    assert.notEqual(after.split('.')[0], closing.split('.')[0]);
    // A pooled connection the server drops at the next request: the request goes again on a new connection.
    const first = await get(`127.0.0.24 ${base}/drop`);
    const again = await get(`127.0.0.24 ${base}/drop`);
    assert.equal(first.split('.')[1], '1');
    assert.deepEqual([again.split('.')[1], again.split('.')[0] !== first.split('.')[0]], ['1', true]);
    assert.equal(log.filter((l) => l.startsWith('127.0.0.24')).length, 3, 'the dropped request was sent twice');
    assert.ok((await stage.end()) >= 0);
  });
});

describe('grpc-client: unary calls in order on one HTTP/2 connection per line, against heph\'s event sink', { skip: 'missing' in grpcBin && grpcBin.missing }, () => {
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  let sink = '';
  before(async () => {
    heph = await inProcessHeph({});
    sink = `127.0.0.1:${(heph.daemon.services.find((s) => s.name === 'events') as EventsService).sink.port}`;
  });
  after(() => heph.stop());

  /** Talos events heph stored from `ip`, in the order it received them. */
  const stored = (ip: string): string[] => {
    heph.daemon.ctx.writer.flush();
    return (heph.daemon.ctx.db.prepare('SELECT event_id FROM talos_events WHERE ip = ? ORDER BY id').all(ip) as { event_id: string }[]).map((r) => r.event_id);
  };

  test('20 machines × 4 events at once: every call answered OK, every event stored in order from its own address', async () => {
    const stage = grpcStage('path' in grpcBin ? grpcBin.path : '', 5000, PUBLISH_PATH);
    const machines = Array.from({ length: 20 }, (_, i) => {
      const ids = xids(4);
      return { ip: `127.0.0.${i + 20}`, ids, messages: INSTALL_RUN.slice(0, 4).map((step, k) => eventRequest(step, ids[k]!)) };
    });
    const done = await Promise.all(machines.map((m) => stage.request(`${m.ip} ${sink} ${m.messages.map((b) => b.toString('hex')).join(',')}`)));
    for (const [i, m] of machines.entries()) {
      assert.equal(done[i]!.bytes, m.messages.reduce((a, b) => a + 5 + b.length, 0));
      assert.ok(done[i]!.ms > 0);
      assert.deepEqual(stored(m.ip), m.ids);
    }
    assert.ok((await stage.end()) >= 0, 'the cpu line arrives at the end');
  });

  test('a message heph refuses, a wrong method, a refused port, an unusable source and bad hex each fail alone', async () => {
    const stage = grpcStage('path' in grpcBin ? grpcBin.path : '', 5000, PUBLISH_PATH);
    const good = eventRequest(INSTALL_RUN[0]!, xids(1)[0]!).toString('hex');
    // The first call is stored, then the garbage one fails the line: the calls really go one after another.
    await assert.rejects(stage.request(`127.0.0.60 ${sink} ${good},ffff01`), /^Error: grpc-status 3: /);
    assert.equal(stored('127.0.0.60').length, 1);
    await assert.rejects(stage.request(`127.0.0.61 127.0.0.1:1 ${good}`), /Connection refused/);
    await assert.rejects(stage.request(`192.0.2.1 ${sink} ${good}`), /bind to the source address/);
    await assert.rejects(stage.request(`127.0.0.62 ${sink} ${good},f`), /not comma-separated hex/);
    await stage.end();
    const wrong = grpcStage('path' in grpcBin ? grpcBin.path : '', 5000, '/events.EventSinkService/Nope');
    await assert.rejects(wrong.request(`127.0.0.63 ${sink} ${good}`), /grpc-status 12|HTTP status/);
    await wrong.end();
  });

  test('a peer that hangs up before answering, and one that never answers, fail the line', async () => {
    const servers = [(s: Socket) => s.once('data', () => s.end()), (s: Socket) => s.resume()].map((onConnection) => createTcpServer(onConnection).listen(0, '127.0.0.1'));
    await Promise.all(servers.map((s) => once(s, 'listening')));
    const [hangsUp, silent] = servers.map((s) => `127.0.0.1:${(s.address() as AddressInfo).port}`);
    const stage = grpcStage('path' in grpcBin ? grpcBin.path : '', 300, PUBLISH_PATH);
    const good = eventRequest(INSTALL_RUN[0]!, xids(1)[0]!).toString('hex');
    await assert.rejects(stage.request(`127.0.0.64 ${hangsUp} ${good}`), /^Error: connection closed$/);
    await assert.rejects(stage.request(`127.0.0.64 ${silent} ${good}`), /^Error: timed out$/);
    await stage.end();
    for (const s of servers) s.close();
  });
});

test('peakRss: the kernel\'s high-water mark keeps a peak that came and went between two looks', async () => {
  // 160 MiB touched, then freed (glibc unmaps a chunk this large at once), then the child waits to be read.
  const child = spawn(process.execPath, ['--expose-gc', '-e', "let b = Buffer.alloc(160 * 2 ** 20, 1); b = null; gc(); console.log('freed'); setTimeout(() => {}, 60_000);"], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await once(child.stdout!, 'data');
    const now = procUsage(child.pid!).rssBytes;
    const peak = peakRss(child.pid!);
    assert.ok(now < 120 * 2 ** 20, `the child gave the memory back (RSS now ${now >> 20} MiB)`);
    assert.ok(peak >= 160 * 2 ** 20, `the peak still counts it (${peak >> 20} MiB)`);
  } finally {
    child.kill();
  }
  assert.throws(() => peakRss(2 ** 22 + 1), /ENOENT/);
});

test('cleanupOnSignal: SIGTERM or SIGINT runs the cleanup once, awaited, then exits 143 or 130; a normal end runs it from finally', async () => {
  const script = join(dir.path, 'cleanup-on-signal.mts'); // .mts: an ES module outside the repository, for its top-level await
  const marks = join(dir.path, 'cleanup-marks');
  // The cleanup takes 300 ms, so that a second signal arrives while it runs; each run appends one line.
  writeFileSync(
    script,
    `import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanupOnSignal } from ${JSON.stringify(join(REPO, 'bench/lib.ts'))};
const cleanup = cleanupOnSignal(async () => { await sleep(300); appendFileSync(${JSON.stringify(marks)}, 'cleaned\\n'); });
console.log('ready');
try { await sleep(process.argv[2] === 'wait' ? 60_000 : 0); } finally { await cleanup(); }
`,
  );
  const run = async (arg: string, signals: NodeJS.Signals[]): Promise<{ code: number | null; marks: string }> => {
    rmSync(marks, { force: true });
    const child = spawn(process.execPath, ['--import', 'tsx', script, arg], { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await once(child.stdout!, 'data');
    for (const s of signals) child.kill(s), await sleep(50);
    const [code] = await exited;
    return { code, marks: existsSync(marks) ? readFileSync(marks, 'utf8') : '' };
  };
  assert.deepEqual(await run('wait', ['SIGTERM']), { code: 143, marks: 'cleaned\n' });
  assert.deepEqual(await run('wait', ['SIGINT', 'SIGINT']), { code: 130, marks: 'cleaned\n' }, 'the second signal waits for the same cleanup');
  assert.deepEqual(await run('end', []), { code: 0, marks: 'cleaned\n' });
});
