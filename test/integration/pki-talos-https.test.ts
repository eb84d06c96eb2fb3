// With tls.enabled, an install script sends Talos (≥ 1.11) to fetch its config over HTTPS, and carries heph's CA
// on the command line (talos.config.early) so that Talos trusts the server certificate.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { importRelease } from '../../src/assets/import.ts';
import { talosReadsEarlyConfig } from '../../src/pki/index.ts';
import type { HttpsService } from '../../src/pki/https.ts';
import { trustedRootsDocument } from '../../src/pki/talos.ts';
import { inProcessHeph, REPO, tempDir } from '../helpers/heph.ts';
import { run, writeTmp } from '../helpers/pki.ts';

const MAC = '52:54:00:aa:bb:02';
const query = '/ipxe?' + new URLSearchParams({ mac: MAC.replaceAll(':', '-'), uuid: '8a0f1c2e-1111-4222-8333-9444555566bb', arch: 'x86_64', platform: 'efi' }).toString();

describe('talos.config over HTTPS', () => {
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  const release = tempDir('heph-pki-release-');
  const fetch = async (url: string, extra: string[] = []): Promise<{ status: number; body: string }> => {
    const r = await run('curl', ['-s', '--interface', '127.0.0.3', '--max-time', '10', '-w', '\n%{http_code}', ...extra, url]);
    const i = r.out.lastIndexOf('\n');
    return { status: Number(r.out.slice(i + 1)), body: r.out.slice(0, i) };
  };

  before(async () => {
    const kernel = randomBytes(1 << 20);
    const initrd = randomBytes(1 << 20);
    writeFileSync(join(release.path, 'vmlinuz-amd64'), kernel);
    writeFileSync(join(release.path, 'initramfs-amd64.xz'), initrd);
    const sum = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
    writeFileSync(join(release.path, 'sha512sum.txt'), `${sum(kernel)}  vmlinuz-amd64\n${sum(initrd)}  initramfs-amd64.xz\n`);
    heph = await inProcessHeph({ network: { advertiseAddress: '127.0.0.1' }, tls: { enabled: true, port: 0 }, profiles: { dir: join(REPO, 'test/fixtures/profiles') } });
    await importRelease({ db: heph.daemon.ctx.db, dataDir: heph.daemon.ctx.dataDir, source: release.path, version: 'v1.13.9' });
  });
  after(async () => {
    await heph.stop();
    release.remove();
  });

  it('puts the CA in talos.config.early and an https talos.config in the install script; the config comes over TLS', async () => {
    assert.equal((await fetch(`${heph.url}${query}`)).status, 200);
    heph.daemon.ctx.machines.update(heph.daemon.ctx.machines.findByMac(MAC)!.id, { acceptance: 'accepted' });
    const script = await fetch(`${heph.url}${query}`);
    assert.equal(script.status, 200);
    const head = await run('curl', ['-s', '-I', '--interface', '127.0.0.3', `${heph.url}${query}`]);
    assert.match(head.out, new RegExp(`content-length: ${Buffer.byteLength(script.body)}\\r?\\n`, 'i'), 'HEAD measures the HTTPS script exactly');
    const port = (heph.daemon.services.find((s) => s.name === 'https') as HttpsService).port;
    const early = /talos\.config\.early=([A-Za-z0-9+/=]+)/.exec(script.body);
    const url = /talos\.config=(https:\/\/127\.0\.0\.1:(\d+)\/config\/[A-Za-z0-9_-]{43})/.exec(script.body);
    assert.ok(early && url, script.body);
    assert.equal(Number(url[2]), port);
    const yaml = spawnSync('zstd', ['-d', '-q', '-c'], { input: Buffer.from(early[1]!, 'base64') }).stdout.toString();
    assert.equal(yaml, trustedRootsDocument(heph.daemon.ctx.ca.certPem));
    // What Talos does next: fetch the config over HTTPS, trusting only what talos.config.early carried.
    const caFile = writeTmp(heph.dir, 'talos-trust.pem', (parseAllDocuments(yaml)[0]!.toJS() as { certificates: string }).certificates);
    const config = await fetch(url[1]!, ['--cacert', caFile]);
    assert.equal(config.status, 200, config.body);
    assert.match(config.body, /^version: v1alpha1/m);
    const other = await run('curl', ['-s', '-o', '/dev/null', '--interface', '127.0.0.4', '--cacert', caFile, '-w', '%{http_code}', url[1]!]);
    assert.equal(other.out, '403', 'over HTTPS the token stays bound to the machine that fetched the script');
  });

  it('only for Talos versions that read talos.config.early', () => {
    for (const v of ['v1.11.0', 'v1.13.9', '1.12', 'v2.0.0']) assert.ok(talosReadsEarlyConfig(v), v);
    for (const v of ['v1.10.6', 'v1.8.0', 'v0.14', 'latest']) assert.ok(!talosReadsEarlyConfig(v), v);
  });
});
