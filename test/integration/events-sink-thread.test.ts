// The event sink's transport on its own thread: every call is answered with what the main thread's handler decided
// (OK, INVALID_ARGUMENT, UNKNOWN when it throws) and only after it ran; a thread that dies is started again on the
// same port, and /healthz says so meanwhile. A real grpc-js client on loopback.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { EventSinkServer, PUBLISH_PATH, type PublishHandler } from '../../src/events/sink.ts';
import { tempDir } from '../helpers/heph.ts';
import { eventually } from '../helpers/wait.ts';

const bytes = (b: Buffer): Buffer => b;

function call(client: grpc.Client, body: Buffer): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => client.makeUnaryRequest(PUBLISH_PATH, bytes, bytes, body, (err) => resolve(err)));
}

async function withSink(handle: PublishHandler, fn: (sink: EventSinkServer, client: grpc.Client) => Promise<void>): Promise<void> {
  const sink = new EventSinkServer({ listen: '127.0.0.1', port: 0 }, handle, pino({ level: 'silent' }));
  await sink.start();
  const client = new grpc.Client(`127.0.0.1:${sink.port}`, grpc.credentials.createInsecure());
  try {
    await fn(sink, client);
  } finally {
    client.close();
    await sink.stop();
  }
}

test('each call gets the status the main-thread handler chose, after it ran', async () => {
  const seen: { ip: string; body: string }[] = [];
  const handle: PublishHandler = (ip, body) => {
    const text = Buffer.from(body).toString();
    seen.push({ ip, body: text });
    if (text === 'throw') throw new Error('disk on fire');
    return text === 'bad' ? { ok: false, message: 'not an events.EventRequest: nope' } : { ok: true };
  };
  await withSink(handle, async (_sink, client) => {
    assert.equal(await call(client, Buffer.from('one')), null);
    assert.deepEqual(seen, [{ ip: '127.0.0.1', body: 'one' }], 'recorded before the answer arrived');
    const bad = await call(client, Buffer.from('bad'));
    assert.equal(bad?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(bad?.details, 'not an events.EventRequest: nope');
    const threw = await call(client, Buffer.from('throw'));
    assert.equal(threw?.code, grpc.status.UNKNOWN);
    // Many at once, over one connection and over several: each answer goes to its own call.
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => call(client, Buffer.from(i % 5 === 0 ? 'bad' : `n${i}`))));
    many.forEach((err, i) => assert.equal(err?.code, i % 5 === 0 ? grpc.status.INVALID_ARGUMENT : undefined, `call ${i}`));
    assert.equal(seen.length, 53);
  });
});

test('the sink listens with room for a rack connecting at once: a backlog of 4096, as the HTTP server', async () => {
  await withSink(() => ({ ok: true }), async (sink, client) => {
    // ss shows a listening socket's backlog as its Send-Q; the kernel caps it at net.core.somaxconn.
    const [, , backlog] = execFileSync('ss', ['-Hltn', `sport = :${sink.port}`], { encoding: 'utf8' }).trim().split(/\s+/);
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    assert.equal(Number(backlog), Math.min(4096, somaxconn));
    // Connections heph accepted itself are grpc-js's as before: calls over many at once are answered.
    const clients = Array.from({ length: 20 }, () => new grpc.Client(`127.0.0.1:${sink.port}`, grpc.credentials.createInsecure()));
    try {
      assert.deepEqual(await Promise.all([client, ...clients].map((c) => call(c, Buffer.from('x')))), Array(21).fill(null));
    } finally {
      for (const c of clients) c.close();
    }
  });
});

test('calls waiting for the main thread are recorded and answered while it is still busy (takeWaiting)', async () => {
  const seen: string[] = [];
  await withSink((_ip, body) => (seen.push(Buffer.from(body).toString()), { ok: true }), async (sink) => {
    // A client in another process (curl, HTTP/2 gRPC framing), while this thread never returns to its event loop.
    const dir = tempDir();
    const file = join(dir.path, 'call.bin');
    writeFileSync(file, Buffer.from([0, 0, 0, 0, 4, ...Buffer.from('busy')]));
    const curl = spawn('curl', ['-sS', '--http2-prior-knowledge', '-X', 'POST', '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--data-binary', `@${file}`, '-D', '-', '-o', '/dev/null', `http://127.0.0.1:${sink.port}${PUBLISH_PATH}`]);
    let out = '';
    curl.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const until = Date.now() + 5000;
    while (seen.length === 0 && Date.now() < until) sink.takeWaiting();
    assert.deepEqual(seen, ['busy'], 'recorded without a turn of the event loop');
    // The answer went back meanwhile; the sink thread answers curl on its own.
    const [code] = (await once(curl, 'exit')) as [number];
    assert.equal(code, 0);
    assert.match(out, /grpc-status: 0/);
    dir.remove();
  });
});

test('a sink thread that dies is started again on the same port, and says so until it is back', async () => {
  let n = 0;
  await withSink(() => (n++, { ok: true }), async (sink, client) => {
    assert.equal(await call(client, Buffer.from('before')), null);
    const port = sink.port;
    await (sink as unknown as { sup: { worker: { terminate(): Promise<number> } } }).sup.worker.terminate();
    assert.match(await eventually(() => sink.problem, 'the sink to report its thread gone'), /event sink thread exited; starting it again in 1 s/);
    await eventually(() => (sink.problem === undefined ? true : undefined), 'the sink thread to be back', 5000);
    assert.equal(sink.port, port);
    assert.equal(sink.starts, 2);
    assert.equal(await call(client, Buffer.from('after')), null, 'the same client reaches the new thread');
    assert.equal(n, 2);
  });
});
