// The machine-facing HTTP server closes a kept-alive connection after MACHINE_KEEP_ALIVE_MS idle (a machine that has
// moved on holds nothing of heph's); the admin listener keeps Fastify's 72 s, which outlasts a proxy's idle timeout.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { HttpService } from '../../src/http/server.ts';
import { MACHINE_KEEP_ALIVE_MS } from '../../src/http/server.ts';
import { inProcessHeph } from '../helpers/heph.ts';
import { httpExchange } from '../helpers/net.ts';

let heph: Awaited<ReturnType<typeof inProcessHeph>>;
before(async () => {
  heph = await inProcessHeph();
});
after(async () => {
  await heph.stop();
});

/** One request on a kept-alive connection; resolves with the socket once the whole answer is in. */
async function keptAlive(port: number): Promise<Socket> {
  const sock = createConnection(port, '127.0.0.1');
  await once(sock, 'connect');
  const [r] = await httpExchange(sock, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n', 1);
  assert.match(r!.head, /^HTTP\/1\.1 \d{3}/);
  assert.match(r!.head, /connection: keep-alive/i);
  return sock;
}

test('an idle kept-alive connection is closed by the machine-facing server after the keep-alive time, not by the admin listener', async () => {
  const api = heph.daemon.services.find((s) => s.name === 'api') as HttpService;
  const machine = await keptAlive(heph.daemon.ctx.http.port);
  const admin = await keptAlive(api.port);
  const t0 = performance.now();
  let adminClosed = false;
  admin.once('end', () => (adminClosed = true));
  await once(machine, 'end');
  const idle = performance.now() - t0;
  assert.ok(idle >= MACHINE_KEEP_ALIVE_MS - 100 && idle < MACHINE_KEEP_ALIVE_MS + 3000, `closed after ${idle.toFixed(0)} ms`);
  // A second later the admin connection is still open and still answers.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(adminClosed, false);
  const [more] = await httpExchange(admin, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', 1);
  assert.match(more!.head, /^HTTP\/1\.1 \d{3}/);
  machine.destroy();
  admin.destroy();
});
