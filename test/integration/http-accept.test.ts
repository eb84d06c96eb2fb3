// heph's HTTP services accept up to ACCEPT_BUDGET + 1 waiting connections per event-loop turn (src/http/accept.ts);
// Node 20's libuv alone accepts one per turn, which left a booting rack's connections queued in the kernel for seconds.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { ACCEPT_BUDGET } from '../../src/http/accept.ts';
import { HttpService } from '../../src/http/server.ts';
import { createLogger } from '../../src/log.ts';
import { queuedConnections } from '../helpers/net.ts';

// More than one budget, so that the rest wait for the following turns.
const N = ACCEPT_BUDGET + 200;

async function service(): Promise<HttpService> {
  const svc = new HttpService({ name: 'http', listen: '127.0.0.1', port: 0, portSetting: 'http.port', log: createLogger({ log: { level: 'silent', format: 'json' } }) });
  svc.app.get('/x', async (req) => `ok ${req.socket.remotePort}`);
  await svc.start();
  return svc;
}

test('a queue of waiting connections is accepted a budget at a time, not one per event-loop turn, and every one is served', async () => {
  const svc = await service();
  try {
    let accepted = 0;
    svc.app.server.on('connection', () => accepted++);
    const socks = queuedConnections(svc.port, N);
    await once(svc.app.server, 'connection');
    // A budget's worth by the time the first is announced (Node 20 by itself: 1), the rest in the next turns.
    assert.equal(accepted, 1 + ACCEPT_BUDGET);
    for (let turn = 0; turn < 5 && accepted < N; turn++) await new Promise((r) => setImmediate(r));
    assert.equal(accepted, N);
    const count = (): Promise<number> => new Promise((resolve, reject) => svc.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    assert.equal(await count(), N);

    const answers = await Promise.all(
      socks.map(async (s) => {
        const port = s.localPort;
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.end('GET /x HTTP/1.1\r\nHost: heph\r\nConnection: close\r\n\r\n');
        await once(s, 'close');
        return { text, port };
      }),
    );
    for (const a of answers) {
      assert.match(a.text, /^HTTP\/1\.1 200 /);
      // Each request was answered on its own connection, from the address it came from.
      assert.ok(a.text.endsWith(`ok ${a.port}`), a.text.slice(-40));
    }
    // Closed connections are counted off as Node's own are.
    for (let i = 0; i < 50 && (await count()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await count(), 0);
  } finally {
    await svc.stop();
  }
});

test('stopping closes connections accepted this way, idle or not', async () => {
  const svc = await service();
  // Within one budget: all are accepted by now (connections still queued in the kernel are reset by the close).
  const socks = queuedConnections(svc.port, ACCEPT_BUDGET);
  await once(svc.app.server, 'connection');
  const closed = socks.map((s) => once(s, 'close'));
  const t0 = Date.now();
  await svc.stop();
  await Promise.all(closed);
  assert.ok(Date.now() - t0 < 3000, `stop took ${Date.now() - t0} ms`);
});
