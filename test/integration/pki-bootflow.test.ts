// The boot flow with signing on: every script heph sends and every asset it serves can be verified the way iPXE
// `imgverify` does (openssl + the iPXE rules), and the scripts verify what they load.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { importRelease } from '../../src/assets/import.ts';
import { inProcessHeph, REPO, tempDir } from '../helpers/heph.ts';
import { ipxeSignatureProblems, run, writeTmp } from '../helpers/pki.ts';

const MAC = '52:54:00:aa:bb:01';
const query = '/ipxe?' + new URLSearchParams({ mac: MAC.replaceAll(':', '-'), uuid: '8a0f1c2e-1111-4222-8333-9444555566aa', arch: 'x86_64', platform: 'efi' }).toString();

describe('boot flow with signing on', () => {
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  const release = tempDir('heph-pki-release-');
  const work = tempDir('heph-pki-flow-');
  // curl from 127.0.0.3: the daemon sees one machine at one address, as on a LAN.
  const curl = async (path: string, name: string): Promise<{ status: number; file: string }> => {
    const file = join(work.path, name);
    const r = await run('curl', ['-s', '--interface', '127.0.0.3', '--max-time', '10', '-o', file, '-w', '%{http_code}', `${heph.url}${path}`]);
    return { status: Number(r.out), file };
  };
  const checked = async (path: string, name: string): Promise<string> => {
    const got = await curl(path, name);
    assert.equal(got.status, 200, path);
    const q = path.indexOf('?');
    const sigPath = q < 0 ? `${path}.sig` : `${path.slice(0, q)}.sig${path.slice(q)}`;
    const sig = await curl(sigPath, `${name}.sig`);
    assert.equal(sig.status, 200, sigPath);
    assert.deepEqual(ipxeSignatureProblems(work.path, readFileSync(sig.file), got.file, heph.daemon.ctx.ca.certPem), [], path);
    return readFileSync(got.file, 'utf8');
  };

  before(async () => {
    const kernel = randomBytes(2 << 20);
    const initrd = randomBytes(1 << 20);
    writeFileSync(join(release.path, 'vmlinuz-amd64'), kernel);
    writeFileSync(join(release.path, 'initramfs-amd64.xz'), initrd);
    const sum = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
    writeFileSync(join(release.path, 'sha512sum.txt'), `${sum(kernel)}  vmlinuz-amd64\n${sum(initrd)}  initramfs-amd64.xz\n`);
    heph = await inProcessHeph({ signing: { enabled: true }, profiles: { dir: join(REPO, 'test/fixtures/profiles') } });
    await importRelease({ db: heph.daemon.ctx.db, dataDir: heph.daemon.ctx.dataDir, source: release.path, version: 'v1.13.9' });
  });
  after(async () => {
    await heph.stop();
    release.remove();
    work.remove();
  });

  it('signs boot.ipxe, which fetches, verifies, then runs the per-machine script', async () => {
    const script = await checked('/boot.ipxe', 'boot.ipxe');
    assert.match(script, /imgfetch --name heph-next http:\/\/[^ ]+\/ipxe\?mac=\$\{netX\/mac:hexhyp\}[^ ]* && imgverify heph-next http:\/\/[^ ]+\/ipxe\.sig\?mac=[^ ]* && chain --replace --autofree heph-next \|\| goto retry/);
  });

  it('signs the hold script and the install script (one-time token included), which verify kernel and initrd', async () => {
    const hold = await checked(query, 'hold.ipxe');
    assert.match(hold, /imgverify heph-next http:\/\/[^ ]+\/boot\.ipxe\.sig/);
    heph.daemon.ctx.machines.update(heph.daemon.ctx.machines.findByMac(MAC)!.id, { acceptance: 'accepted' });
    const install = await checked(query, 'install.ipxe');
    assert.match(install, /talos\.config=http:\/\/[^ ]+\/config\/[A-Za-z0-9_-]{43}/);
    const kernelUrl = /kernel --name vmlinuz (\S+) .* && imgverify vmlinuz (\S+) && goto initrd \|\|/.exec(install);
    const initrdUrl = /initrd --name initramfs\.xz (\S+) && imgverify initramfs\.xz (\S+) && goto boot \|\|/.exec(install);
    assert.ok(kernelUrl && initrdUrl, install);
    assert.equal(kernelUrl[2], `${kernelUrl[1]}.sig`);
    assert.equal(initrdUrl[2], `${initrdUrl[1]}.sig`);
    // The assets those lines name, and their signatures, as iPXE would fetch them.
    for (const [i, url] of [kernelUrl[1]!, initrdUrl[1]!].entries()) await checked(new URL(url).pathname, `asset-${i}`);
  });

  it('gives no signature for an asset whose bytes no longer match its SHA-512', async () => {
    const asset = heph.daemon.ctx.db.prepare<[], { id: string; name: string; path: string }>("SELECT id, name, path FROM assets WHERE name = 'initramfs-amd64.xz'").get()!;
    writeTmp(heph.daemon.ctx.dataDir, asset.path, randomBytes(1 << 20));
    const sig = await curl(`/assets/${asset.id.slice(0, 64)}/${asset.name}.sig`, 'bad.sig');
    assert.equal(sig.status, 404);
  });
});
