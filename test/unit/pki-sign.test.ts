import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import forge from 'node-forge';
import { issueServerCert, loadOrCreateCA, type CA } from '../../src/pki/ca.ts';
import { createSigner, loadOrCreateSigner, type Signer } from '../../src/pki/sign.ts';
import { tempDir } from '../helpers/heph.ts';
import { ipxeSignatureProblems, openssl, writeTmp } from '../helpers/pki.ts';

describe('boot artefact signatures', () => {
  const tmp = tempDir('heph-pki-sign-');
  let ca: CA;
  let signer: Signer;
  before(async () => {
    ca = await loadOrCreateCA(join(tmp.path, 'data'));
    signer = await loadOrCreateSigner(ca);
  });
  after(() => tmp.remove());

  it('keeps its key and certificate 0600 beside the CA and reuses them', async () => {
    for (const f of ['signing.crt', 'signing.key']) assert.equal(statSync(join(ca.dir, f)).mode & 0o777, 0o600, f);
    assert.equal((await loadOrCreateSigner(ca)).certPem, signer.certPem);
    assert.equal(signer.chainPem, signer.certPem + ca.certPem);
  });

  it('signs a script so that openssl verifies it and iPXE rules hold; a changed byte fails', () => {
    const script = '#!ipxe\nkernel http://192.0.2.1:8080/assets/vmlinuz talos.platform=metal\nboot\n';
    const f = writeTmp(tmp.path, 'boot.ipxe', script);
    const sig = signer.signBuffer(script);
    assert.deepEqual(ipxeSignatureProblems(tmp.path, sig, f, ca.certPem), []);
    const tampered = writeTmp(tmp.path, 'boot-tampered.ipxe', script.replace('metal', 'metaL'));
    const problems = ipxeSignatureProblems(tmp.path, sig, tampered, ca.certPem);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /openssl cms -verify failed/);
  });

  it('is byte-identical to forge pkcs7.sign without attributes (the form a real iPXE accepted)', () => {
    const data = randomBytes(4096);
    const p7 = forge.pkcs7.createSignedData();
    p7.content = forge.util.createBuffer(data.toString('binary'));
    p7.addCertificate(forge.pki.certificateFromPem(signer.certPem));
    p7.addCertificate(ca.cert);
    const keyPem = readFileSync(join(ca.dir, 'signing.key'), 'utf8');
    p7.addSigner({ key: forge.pki.privateKeyFromPem(keyPem), certificate: forge.pki.certificateFromPem(signer.certPem), digestAlgorithm: forge.pki.oids.sha256! });
    p7.sign({ detached: true });
    const viaForge = Buffer.from(forge.asn1.toDer(p7.toAsn1()).getBytes(), 'binary');
    assert.ok(viaForge.equals(signer.signBuffer(data)));
  });

  it('signs a large file by streaming, and a flipped byte deep inside fails', async () => {
    const f = join(tmp.path, 'initramfs.xz');
    const fd = openSync(f, 'w');
    const chunk = randomBytes(1 << 20);
    for (let i = 0; i < 24; i++) writeSync(fd, chunk);
    closeSync(fd);
    const sig = await signer.signFile(f);
    assert.ok(sig.equals(signer.signBuffer(readFileSync(f))), 'streamed and in-memory signatures agree');
    assert.deepEqual(ipxeSignatureProblems(tmp.path, sig, f, ca.certPem), []);
    const fd2 = openSync(f, 'r+');
    writeSync(fd2, Buffer.from([chunk[77]! ^ 1]), 0, 1, 17 * (1 << 20) + 77);
    closeSync(fd2);
    assert.match(ipxeSignatureProblems(tmp.path, sig, f, ca.certPem).join(), /verify failed/);
  });

  it('the checker catches what openssl lets through: a serverAuth signer', async () => {
    const server = await issueServerCert(ca, { commonName: 'not-a-signer', ipAddresses: ['127.0.0.1'] });
    const wrong = createSigner(server.certPem, server.keyPem, [ca.certPem]);
    const f = writeTmp(tmp.path, 'x.ipxe', '#!ipxe\n');
    assert.deepEqual(ipxeSignatureProblems(tmp.path, wrong.signBuffer('#!ipxe\n'), f, ca.certPem), ['signer lacks the codeSigning extended key usage']);
    const noRoot = createSigner(signer.certPem, readFileSync(join(ca.dir, 'signing.key'), 'utf8'), []);
    assert.ok(ipxeSignatureProblems(tmp.path, noRoot.signBuffer('#!ipxe\n'), f, ca.certPem).includes('the root CA certificate is not inside the signature'));
  });

  it('the checker catches signed attributes (openssl -sign without -noattr)', () => {
    const f = writeTmp(tmp.path, 'y.ipxe', '#!ipxe\necho hi\n');
    const certFile = writeTmp(tmp.path, 's.crt', signer.certPem);
    const keyFile = writeTmp(tmp.path, 's.key', readFileSync(join(ca.dir, 'signing.key')));
    const caFile = writeTmp(tmp.path, 'c.pem', ca.certPem);
    const out = join(tmp.path, 'attr.sig');
    const { status } = openssl(['cms', '-sign', '-binary', '-in', f, '-signer', certFile, '-inkey', keyFile, '-certfile', caFile, '-outform', 'DER', '-out', out]);
    assert.equal(status, 0);
    assert.deepEqual(ipxeSignatureProblems(tmp.path, readFileSync(out), f, ca.certPem), ['signed attributes present (iPXE rejects them)']);
  });
});
