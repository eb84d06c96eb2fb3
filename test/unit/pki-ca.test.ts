import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StartupError } from '../../src/errors.ts';
import { issueClientCert, issueServerCert, issueSigningCert, loadOrCreateCA, type CA } from '../../src/pki/ca.ts';
import { tempDir } from '../helpers/heph.ts';
import { openssl, writeTmp, x509Text } from '../helpers/pki.ts';

describe('heph CA', () => {
  const tmp = tempDir('heph-pki-ca-');
  const dataDir = join(tmp.path, 'data');
  let ca: CA;
  before(async () => {
    ca = await loadOrCreateCA(dataDir);
  });
  after(() => tmp.remove());

  it('is created on first start as a 0600 RSA key and certificate in a 0700 directory', () => {
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'pki')).mode & 0o777, 0o700);
    for (const f of ['ca.crt', 'ca.key']) assert.equal(statSync(join(dataDir, 'pki', f)).mode & 0o777, 0o600, f);
    const text = x509Text(ca.certPem);
    assert.match(text, /Public Key Algorithm: rsaEncryption/);
    assert.match(text, /Public-Key: \(3072 bit\)/);
    assert.match(text, /CA:TRUE/);
    assert.match(text, /Certificate Sign, CRL Sign/);
    assert.match(readFileSync(join(dataDir, 'pki', 'ca.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('is read back unchanged on the next start', async () => {
    const again = await loadOrCreateCA(dataDir);
    assert.equal(again.fingerprint, ca.fingerprint);
    assert.equal(again.certPem, ca.certPem);
    const fp = openssl(['x509', '-noout', '-fingerprint', '-sha256'], ca.certPem).out;
    assert.ok(fp.includes(ca.fingerprint), fp);
  });

  it('issues a server certificate that openssl verifies for TLS servers, with the requested IP and DNS names', async () => {
    const c = await issueServerCert(ca, { commonName: 'heph', ipAddresses: ['192.0.2.10', '127.0.0.1'], dnsNames: ['heph.example'] });
    const caFile = writeTmp(tmp.path, 'ca.pem', c.caPem);
    const r = openssl(['verify', '-CAfile', caFile, '-purpose', 'sslserver', '-verify_ip', '192.0.2.10'], c.certPem);
    assert.equal(r.status, 0, r.out);
    assert.equal(openssl(['verify', '-CAfile', caFile, '-verify_hostname', 'heph.example'], c.certPem).status, 0);
    assert.notEqual(openssl(['verify', '-CAfile', caFile, '-verify_ip', '192.0.2.11'], c.certPem).status, 0, 'an IP not in the SANs must fail');
    assert.notEqual(openssl(['verify', '-CAfile', caFile, '-purpose', 'sslclient'], c.certPem).status, 0, 'not a client certificate');
    assert.equal(c.chainPem, c.certPem + ca.certPem);
    assert.ok(c.notAfter.getTime() > Date.now());
    const text = x509Text(c.certPem);
    assert.match(text, /Not Before: /);
    const notBefore = new Date(/Not Before: (.*)/.exec(text)![1]!);
    assert.ok(Date.now() - notBefore.getTime() >= 3600_000, 'backdated at least an hour for machines with a wrong clock');
  });

  it('issues a client certificate that openssl verifies for TLS clients only', async () => {
    const c = await issueClientCert(ca, { commonName: 'alice', organization: 'heph:admin' });
    const caFile = writeTmp(tmp.path, 'ca.pem', c.caPem);
    assert.equal(openssl(['verify', '-CAfile', caFile, '-purpose', 'sslclient'], c.certPem).status, 0);
    assert.notEqual(openssl(['verify', '-CAfile', caFile, '-purpose', 'sslserver'], c.certPem).status, 0);
    assert.match(openssl(['x509', '-noout', '-subject'], c.certPem).out, /CN\s*=\s*alice, O\s*=\s*heph:admin/);
    assert.equal(openssl(['pkey', '-noout'], c.keyPem).status, 0);
  });

  it('issues a signing certificate with digitalSignature and codeSigning only', async () => {
    const c = await issueSigningCert(ca);
    const text = x509Text(c.certPem);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    assert.match(text, /X509v3 Extended Key Usage: \n\s+Code Signing\n/);
    assert.doesNotMatch(text, /Authority Information Access/, 'no AIA: iPXE would try OCSP');
  });

  it('refuses to start with half a CA or a key that does not match', async () => {
    const other = tempDir('heph-pki-ca2-');
    try {
      const dir = join(other.path, 'd');
      const second = await loadOrCreateCA(dir);
      writeFileSync(join(dir, 'pki', 'ca.key'), ca.keyPem);
      await assert.rejects(loadOrCreateCA(dir), (e: unknown) => e instanceof StartupError && /does not belong/.test(e.message));
      writeFileSync(join(dir, 'pki', 'ca.key'), second.keyPem);
      const { rmSync } = await import('node:fs');
      rmSync(join(dir, 'pki', 'ca.crt'));
      await assert.rejects(loadOrCreateCA(dir), (e: unknown) => e instanceof StartupError && /ca.crt is missing/.test(e.message) && /heph pki rotate/.test(e.hint ?? ''));
    } finally {
      other.remove();
    }
  });
});
