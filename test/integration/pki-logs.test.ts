import assert from 'node:assert/strict';
import { readFileSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnHeph, tempDir } from '../helpers/heph.ts';
import { findLeaks } from '../helpers/leaks.ts';
import { run } from '../helpers/pki.ts';

describe('a daemon with HTTPS and signing on', () => {
  const tmp = tempDir('heph-pki-logs-');
  after(() => tmp.remove());

  it('creates its trust files 0600/0700 and writes no PEM, key or token to its logs, even at debug level (HTTPS, signing, admin gRPC on)', async () => {
    const dataDir = join(tmp.path, 'data');
    const heph = await spawnHeph({
      dataDir,
      log: { level: 'debug' },
      network: { advertiseAddress: '127.0.0.1' },
      http: { listen: '127.0.0.1', port: 0 },
      grpc: { listen: '127.0.0.1', port: 0 },
      kmsg: { listen: '127.0.0.1', port: 0 },
      // The admin gRPC listener gets a server certificate from the CA too: its logs are checked as well.
      api: { port: 0, grpc: { enabled: true, port: 0 } },
      tls: { enabled: true, port: 0 },
      signing: { enabled: true },
    });
    const up = heph.logs.find((l) => l.msg === 'heph is up') as { services: Record<string, { listening?: { tcp?: string } }> };
    const https = up.services.https?.listening?.tcp;
    const http = up.services.http?.listening?.tcp;
    assert.ok(https && http, JSON.stringify(up.services));
    const ca = join(dataDir, 'pki', 'ca.crt');
    const bogus = `heph_0123456789ab_${'Zz9'.repeat(14)}x`;
    const fetches = [
      ['--cacert', ca, `https://${https}/healthz`],
      ['--cacert', ca, '-H', `Authorization: Bearer ${bogus}`, `https://${https}/api/v1/machines`],
      [`http://${http}/config/${'Qq7'.repeat(14)}x`],
      [`http://${http}/nothing.sig`],
      [`https://${https}/healthz`], // no CA: a failed handshake, logged at debug
    ];
    for (const args of fetches) await run('curl', ['-s', '-o', '/dev/null', '--max-time', '5', ...args]);
    const keyFile = readFileSync(join(dataDir, 'secrets.key'), 'utf8').trim();
    const keyLines = (f: string): string[] => readFileSync(join(dataDir, 'pki', f), 'utf8').split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----'));
    for (const f of ['secrets.key', 'heph.db']) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
    for (const f of readdirSync(join(dataDir, 'pki'))) assert.equal(statSync(join(dataDir, 'pki', f)).mode & 0o777, 0o600, f);
    for (const d of [dataDir, join(dataDir, 'pki')]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
    assert.equal(await heph.stop(), 0);
    assert.ok(heph.logs.some((l) => l.msg === 'trust ready'));
    assert.ok(heph.logs.length > 5);
    const leaks = findLeaks([...heph.logs, ...heph.stderr().split('\n')], [keyFile, bogus, ...keyLines('ca.key'), ...keyLines('signing.key')]);
    assert.deepEqual(leaks, []);
  });
});
