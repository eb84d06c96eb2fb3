import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createLogger } from '../../src/log.ts';
import { createRegistry } from '../../src/metrics.ts';
import { loadOrCreateCA, type CA } from '../../src/pki/ca.ts';
import { signatureUrl, verifiedChain } from '../../src/pki/ipxe.ts';
import { loadOrCreateSigner } from '../../src/pki/sign.ts';
import { registerSignatureRoutes } from '../../src/pki/signatures.ts';
import { tempDir } from '../helpers/heph.ts';
import { ipxeSignatureProblems, run, writeTmp } from '../helpers/pki.ts';

/** Fetches with a real HTTP client; returns the status code. */
const curl = async (url: string, out: string): Promise<number> => Number((await run('curl', ['-s', '--max-time', '10', '-o', out, '-w', '%{http_code}', url])).out);

describe('<url>.sig routes', () => {
  const tmp = tempDir('heph-pki-sigroutes-');
  let app: FastifyInstance;
  let base: string;
  let ca: CA;
  const asset = join(tmp.path, 'initramfs-amd64.xz');
  before(async () => {
    ca = await loadOrCreateCA(join(tmp.path, 'data'));
    const signer = await loadOrCreateSigner(ca);
    writeFileSync(asset, randomBytes(3 << 20));
    app = Fastify();
    const metrics = createRegistry();
    registerSignatureRoutes(app, {
      signer,
      log: createLogger({ log: { level: 'silent', format: 'json' } }),
      metrics,
      resolve: (path) => (path === '/assets/initramfs-amd64.xz' ? { file: asset } : undefined),
    });
    // Like the real per-machine script: a fresh one-time token in every response.
    app.get('/ipxe', async (req, reply) => reply.type('text/plain').send(`#!ipxe\necho ${(req.query as { mac?: string }).mac}\nkernel http://x/k talos.config=http://x/config/${randomBytes(16).toString('hex')}\nboot\n`));
    app.get('/assets/initramfs-amd64.xz', async (_req, reply) => reply.send(createReadStream(asset)));
    app.get('/boot.ipxe', async (_req, reply) => reply.type('text/plain').send('#!ipxe\nchain http://x/ipxe\n'));
    app.get('/metrics', async () => metrics.metrics());
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
    tmp.remove();
  });

  it('serves the signature of exactly the script this client was sent (one-time token included)', async () => {
    const url = `${base}/ipxe?mac=52-54-00-12-34-56&uuid=x`;
    const s1 = join(tmp.path, 's1.ipxe');
    assert.equal(await curl(url, s1), 200);
    const sig1 = join(tmp.path, 's1.sig');
    assert.equal(await curl(signatureUrl(url), sig1), 200);
    assert.deepEqual(ipxeSignatureProblems(tmp.path, readFileSync(sig1), s1, ca.certPem), []);
    // A second fetch mints a new token: the signature follows the latest script, and no longer fits the old one.
    const s2 = join(tmp.path, 's2.ipxe');
    assert.equal(await curl(url, s2), 200);
    assert.notEqual(readFileSync(s1, 'utf8'), readFileSync(s2, 'utf8'));
    const sig2 = join(tmp.path, 's2.sig');
    assert.equal(await curl(signatureUrl(url), sig2), 200);
    assert.deepEqual(ipxeSignatureProblems(tmp.path, readFileSync(sig2), s2, ca.certPem), []);
    assert.match(ipxeSignatureProblems(tmp.path, readFileSync(sig2), s1, ca.certPem).join(), /verify failed/);
  });

  it('gives no script signature to another client or for a URL never fetched', async () => {
    const res = await app.inject({ url: '/ipxe?mac=aa', remoteAddress: '10.9.9.9' });
    assert.equal(res.statusCode, 200);
    assert.equal((await app.inject({ url: '/ipxe.sig?mac=aa', remoteAddress: '10.9.9.9' })).statusCode, 200);
    const other = await app.inject({ url: '/ipxe.sig?mac=aa', remoteAddress: '10.9.9.8' });
    assert.equal(other.statusCode, 404);
    assert.equal((JSON.parse(other.body) as { error: { code: string } }).error.code, 'not_found');
    assert.equal((await app.inject({ url: '/ipxe.sig?mac=never', remoteAddress: '10.9.9.9' })).statusCode, 404);
  });

  it('signs a script that is the same for every machine once, and gives each machine its signature', async () => {
    const signedCount = async (): Promise<number> => Number(/heph_scripts_signed_total (\d+)/.exec((await app.inject({ url: '/metrics' })).body)?.[1]);
    const before = await signedCount();
    for (const ip of ['10.1.0.1', '10.1.0.2', '10.1.0.3']) {
      assert.equal((await app.inject({ url: '/boot.ipxe', remoteAddress: ip })).statusCode, 200);
      assert.equal((await app.inject({ url: '/boot.ipxe.sig', remoteAddress: ip })).statusCode, 200);
    }
    assert.equal(await signedCount(), before + 1);
  });

  it('signs assets by streaming them, and the signature fails once the file changes', async () => {
    const got = join(tmp.path, 'got.xz');
    assert.equal(await curl(`${base}/assets/initramfs-amd64.xz`, got), 200);
    const sigFile = join(tmp.path, 'asset.sig');
    assert.equal(await curl(`${base}/assets/initramfs-amd64.xz.sig`, sigFile), 200);
    const sig = readFileSync(sigFile);
    assert.deepEqual(ipxeSignatureProblems(tmp.path, sig, got, ca.certPem), []);
    const tampered = writeTmp(tmp.path, 'tampered.xz', Buffer.concat([readFileSync(got).subarray(0, 1000), Buffer.from('X'), readFileSync(got).subarray(1001)]));
    assert.match(ipxeSignatureProblems(tmp.path, sig, tampered, ca.certPem).join(), /verify failed/);
    assert.equal(await curl(`${base}/assets/nothing.xz.sig`, join(tmp.path, 'none')), 404);
    const metrics = await app.inject({ url: '/metrics' });
    assert.match(metrics.body, /heph_signatures_served_total\{kind="file"\} 1/);
    assert.match(metrics.body, /heph_signatures_served_total\{kind="script"\} [1-9]/);
  });

  it('builds script lines that fetch, verify, then run', () => {
    assert.equal(signatureUrl('http://h/ipxe?a=1&b=2'), 'http://h/ipxe.sig?a=1&b=2');
    assert.equal(signatureUrl('http://h/assets/vmlinuz'), 'http://h/assets/vmlinuz.sig');
    assert.equal(verifiedChain('http://h/ipxe?a=1'), 'imgfetch --name heph-next http://h/ipxe?a=1 && imgverify heph-next http://h/ipxe.sig?a=1 && chain --replace --autofree heph-next');
  });
});
