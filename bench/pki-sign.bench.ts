// Signing a large boot artefact: heph (node:crypto streaming digest + forge-built CMS) against
// `openssl cms -sign -binary -noattr` (the reference) and forge's own pkcs7.sign, on the same file, same key.
//   npm run bench -- pki-sign [MiB]      (default 64)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { loadOrCreateCA } from '../src/pki/ca.ts';
import { loadOrCreateSigner } from '../src/pki/sign.ts';
import { tempDir } from '../test/helpers/heph.ts';
import { table } from './lib.ts';

const mib = Number(process.argv[2] ?? 64);
const tmp = tempDir('heph-bench-sign-');
try {
  const ca = await loadOrCreateCA(join(tmp.path, 'data'));
  const signer = await loadOrCreateSigner(ca);
  const file = join(tmp.path, 'initramfs.xz');
  const fd = openSync(file, 'w');
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  closeSync(fd);
  const crt = join(ca.dir, 'signing.crt');
  const key = join(ca.dir, 'signing.key');
  const caFile = join(tmp.path, 'ca.pem');
  writeFileSync(caFile, ca.certPem);

  const time = async (fn: () => unknown): Promise<number> => {
    const best: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = process.hrtime.bigint();
      await fn();
      best.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return Math.min(...best);
  };
  const heph = await time(() => signer.signFile(file));
  const openssl = await time(() => {
    const r = spawnSync('openssl', ['cms', '-sign', '-binary', '-noattr', '-in', file, '-signer', crt, '-inkey', key, '-certfile', caFile, '-outform', 'DER', '-out', join(tmp.path, 'o.sig')]);
    if (r.status !== 0) throw new Error(r.stderr.toString());
  });
  const viaForge = await time(() => {
    const p7 = forge.pkcs7.createSignedData();
    p7.content = forge.util.createBuffer(readFileSync(file).toString('binary'));
    p7.addCertificate(forge.pki.certificateFromPem(signer.certPem));
    p7.addCertificate(ca.cert);
    p7.addSigner({ key: forge.pki.privateKeyFromPem(readFileSync(key, 'utf8')), certificate: forge.pki.certificateFromPem(signer.certPem), digestAlgorithm: forge.pki.oids.sha256! });
    p7.sign({ detached: true });
  });
  console.log(`signing a ${mib} MiB file, best of 3\n`);
  console.log(
    table([
      { signer: 'heph signFile (streaming)', ms: heph.toFixed(0), 'MiB/s': (mib / (heph / 1000)).toFixed(0), 'time vs openssl': (heph / openssl).toFixed(2) },
      { signer: 'openssl cms -sign -noattr', ms: openssl.toFixed(0), 'MiB/s': (mib / (openssl / 1000)).toFixed(0), 'time vs openssl': '1.00' },
      { signer: 'forge pkcs7.sign (in memory)', ms: viaForge.toFixed(0), 'MiB/s': (mib / (viaForge / 1000)).toFixed(0), 'time vs openssl': (viaForge / openssl).toFixed(2) },
    ]),
  );
} finally {
  tmp.remove();
}
