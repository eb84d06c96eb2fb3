import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { issueServerCert, readCA } from '../../src/pki/ca.ts';
import { HEPH_BIN, tempDir } from '../helpers/heph.ts';
import { run } from '../helpers/pki.ts';

const heph = (dataDir: string, ...args: string[]) => run(process.execPath, [HEPH_BIN, ...args, '--set', `dataDir=${dataDir}`]);

describe('heph pki', () => {
  const tmp = tempDir('heph-pki-cli-');
  const dataDir = join(tmp.path, 'data');
  after(() => tmp.remove());

  it('show creates the CA and prints its fingerprint', async () => {
    const r = await heph(dataDir, 'pki', 'show');
    assert.equal(r.status, 0, r.err);
    assert.ok(r.out.includes(readCA(join(dataDir, 'pki')).fingerprint));
    assert.match(r.out, /RSA 2048 bits/);
    const ca = await heph(dataDir, 'pki', 'ca');
    assert.equal(ca.out, readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8'));
    assert.doesNotMatch(r.out + ca.out, /PRIVATE KEY/);
  });

  it('a client certificate from heph CA (heph admin-cert create) passes mutual TLS against a server requiring heph CA', async () => {
    const out = join(tmp.path, 'creds');
    const r = await heph(dataDir, 'admin-cert', 'create', '--name', 'alice', '--scope', 'admin', '--out', out);
    assert.equal(r.status, 0, r.err);
    assert.equal(statSync(join(out, 'alice.key')).mode & 0o777, 0o600);
    const ca = readCA(join(dataDir, 'pki'));
    const server = await issueServerCert(ca, { commonName: 'admin-api', ipAddresses: ['127.0.0.1'] });
    const srv: Server = createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.end(`hello ${peer.subject.CN} ${peer.subject.O}`);
    });
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const port = (srv.address() as { port: number }).port;
    try {
      const ok = await run('curl', ['-sS', '--cacert', join(out, 'ca.crt'), '--cert', join(out, 'alice.crt'), '--key', join(out, 'alice.key'), `https://127.0.0.1:${port}/`]);
      assert.equal(ok.status, 0, ok.err);
      assert.equal(ok.out, 'hello alice heph:admin');
      const anonymous = await run('curl', ['-sS', '--cacert', join(out, 'ca.crt'), `https://127.0.0.1:${port}/`]);
      assert.notEqual(anonymous.status, 0, 'no client certificate: refused');
    } finally {
      srv.close();
    }
  });

  it('talos-arg prints the kernel argument', async () => {
    const r = await heph(dataDir, 'pki', 'talos-arg');
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /^talos\.config\.early=[A-Za-z0-9+/=]+\n$/);
  });

  it('rotate needs --yes, then retires the old CA and makes a new one', async () => {
    const before = readCA(join(dataDir, 'pki')).fingerprint;
    const refused = await heph(dataDir, 'pki', 'rotate');
    assert.equal(refused.status, 2);
    assert.equal(readCA(join(dataDir, 'pki')).fingerprint, before);
    const r = await heph(dataDir, 'pki', 'rotate', '--yes');
    assert.equal(r.status, 0, r.err);
    const after = readCA(join(dataDir, 'pki')).fingerprint;
    assert.notEqual(after, before);
    const retired = readdirSync(join(dataDir, 'pki')).filter((f) => f.startsWith('retired-'));
    assert.equal(retired.length, 1);
    const old = join(dataDir, 'pki', retired[0]!);
    assert.equal(readCA(old).fingerprint, before);
    assert.equal(statSync(old).mode & 0o777, 0o700);
    assert.equal(statSync(join(old, 'ca.key')).mode & 0o777, 0o600);
  });
});
