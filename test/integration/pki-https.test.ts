import assert from 'node:assert/strict';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import type { Server } from 'node:net';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HttpsService } from '../../src/pki/https.ts';
import { inProcessHeph } from '../helpers/heph.ts';
import { queuedConnections } from '../helpers/net.ts';
import { run, writeTmp } from '../helpers/pki.ts';

const curl = (args: string[]) => run('curl', ['-sS', '--max-time', '10', ...args]);

describe('HTTPS for the machine-facing endpoints', () => {
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  let httpsPort: number;
  let caFile: string;
  before(async () => {
    heph = await inProcessHeph({ network: { advertiseAddress: '192.0.2.10' }, tls: { enabled: true, port: 0, ipAddresses: ['127.0.0.1'], dnsNames: ['heph.test'] } });
    const https = heph.daemon.services.find((s) => s.name === 'https') as HttpsService;
    httpsPort = https.port;
    caFile = writeTmp(heph.dir, 'ca-copy.pem', heph.daemon.ctx.ca.certPem);
  });
  after(async () => heph.stop());

  it('serves the same routes over TLS to a client that trusts heph CA (curl --cacert)', async () => {
    const r = await curl(['--cacert', caFile, `https://127.0.0.1:${httpsPort}/healthz`]);
    assert.equal(r.status, 0, r.err);
    const body = JSON.parse(r.out) as { status: string; services: Record<string, { state: string }> };
    assert.equal(body.services.https?.state, 'up');
    const byName = await curl(['--cacert', caFile, '--resolve', `heph.test:${httpsPort}:127.0.0.1`, `https://heph.test:${httpsPort}/healthz`]);
    assert.equal(byName.status, 0, byName.err);
    const plain = await curl([`${heph.url}/healthz`]);
    assert.equal(plain.status, 0, 'HTTP keeps working next to HTTPS');
  });

  it('is refused by a client that does not trust heph CA, and for a name not in the certificate', async () => {
    const r = await curl([`https://127.0.0.1:${httpsPort}/healthz`]);
    assert.equal(r.status, 60, `curl exit 60 (peer certificate cannot be authenticated): ${r.err}`);
    const wrongName = await curl(['--cacert', caFile, '--resolve', `other.test:${httpsPort}:127.0.0.1`, `https://other.test:${httpsPort}/healthz`]);
    assert.notEqual(wrongName.status, 0);
  });

  it('presents a serverAuth certificate whose IP SANs include the advertise address, with the root after it', async () => {
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-CAfile', caFile, '-verify_return_error', '-verify_ip', '192.0.2.10']);
    assert.match(r.out, /Verify return code: 0 \(ok\)/, r.out + r.err);
    assert.match(r.out, /New, TLSv1\.[23], Cipher is/);
    // The root is sent along: iPXE finds trusted roots only among the certificates it receives.
    assert.match(r.out, / 1 s:CN = heph CA [^\n]*\n\s+i:CN = heph CA /, 'the chain sent is leaf + root');
  });

  it('accepts a queue of waiting connections at once, and each completes its handshake and request', async () => {
    const server = (heph.daemon.services.find((s) => s.name === 'https') as unknown as { server: Server }).server;
    let accepted = 0;
    const count = (): void => void accepted++;
    server.on('connection', count);
    try {
      const socks = queuedConnections(httpsPort, 40);
      await once(server, 'connection');
      // Node 20 by itself accepts 1 per event-loop turn.
      assert.equal(accepted, 40);
      const statuses = await Promise.all(
        socks.map(async (raw) => {
          const tls = connect({ socket: raw, ca: heph.daemon.ctx.ca.certPem, servername: 'heph.test' });
          let text = '';
          tls.on('data', (d: Buffer) => (text += d.toString()));
          tls.end('GET /healthz HTTP/1.1\r\nHost: heph.test\r\nConnection: close\r\n\r\n');
          await once(tls, 'close');
          return text.split('\r\n')[0];
        }),
      );
      assert.deepEqual(new Set(statuses), new Set(['HTTP/1.1 200 OK']));
    } finally {
      server.off('connection', count);
    }
  });

  it('keeps the CA key 0600 in the 0700 data dir', () => {
    const pki = join(heph.dir, 'pki');
    assert.equal(statSync(pki).mode & 0o777, 0o700);
    assert.equal(statSync(join(pki, 'ca.key')).mode & 0o777, 0o600);
  });
});
