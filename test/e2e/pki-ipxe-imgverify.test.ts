// Opt-in: a real iPXE, built to trust a fresh heph CA, checks heph's signatures.
//   IPXE_SRC=/path/to/ipxe/src node --import tsx --test test/e2e/pki-ipxe-imgverify.test.ts
// The iPXE source tree must have `#define IMAGE_TRUST_CMD` in config/local/general.h and `#define CONSOLE_SERIAL`
// in config/local/console.h (docs/ipxe-trust.md). With `#define DOWNLOAD_PROTO_HTTPS` there too, iPXE fetches
// everything over HTTPS from heph's HTTPS listener, so the server certificate is checked by iPXE as well. Debian ships no iPXE source here (`apt-get source ipxe` finds
// no files on the mirror), so the tree comes from a git checkout. The first build takes minutes; later ones,
// which change only TRUST= and EMBED=, about 10 s.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createLogger } from '../../src/log.ts';
import { createRegistry } from '../../src/metrics.ts';
import { loadOrCreateCA } from '../../src/pki/ca.ts';
import { HttpsService } from '../../src/pki/https.ts';
import { verifiedChain } from '../../src/pki/ipxe.ts';
import { loadOrCreateSigner } from '../../src/pki/sign.ts';
import { registerSignatureRoutes } from '../../src/pki/signatures.ts';
import { tempDir } from '../helpers/heph.ts';
import { run } from '../helpers/pki.ts';

const SRC = process.env.IPXE_SRC;
const localConfig = SRC && existsSync(join(SRC, 'config/local/general.h')) ? readFileSync(join(SRC, 'config/local/general.h'), 'utf8') : '';
const skip = !SRC ? 'set IPXE_SRC to an iPXE src directory to run this' : !/^\s*#define\s+IMAGE_TRUST_CMD/m.test(localConfig) ? `${SRC}/config/local/general.h must #define IMAGE_TRUST_CMD` : false;
const overHttps = /^\s*#define\s+DOWNLOAD_PROTO_HTTPS/m.test(localConfig);

// Inside QEMU's user network (restrict=on: no route to the host or beyond) only this address leads anywhere:
// guestfwd connects it to the test server on the host's loopback.
const GUEST_FWD = '10.0.2.100';
const HEPH = `${overHttps ? 'https' : 'http'}://${GUEST_FWD}`;

describe('a real iPXE with heph CA built in', { skip }, () => {
  const tmp = tempDir('heph-e2e-ipxe-');
  let app: FastifyInstance;
  let https: HttpsService | undefined;
  let port = 0;
  let kernel = '';
  before(async () => {
    const ca = await loadOrCreateCA(join(tmp.path, 'data'));
    const signer = await loadOrCreateSigner(ca);
    const good = join(tmp.path, 'initramfs.xz');
    writeFileSync(good, randomBytes(2 << 20));
    const bad = join(tmp.path, 'tampered.xz');
    const bytes = readFileSync(good);
    bytes[1 << 20] = bytes[1 << 20]! ^ 0xff;
    writeFileSync(bad, bytes);
    app = Fastify();
    registerSignatureRoutes(app, {
      signer,
      log: createLogger({ log: { level: 'silent', format: 'json' } }),
      metrics: createRegistry(),
      // The tampered file is offered with the good file's signature, as if changed in transit.
      resolve: (path) => (path === '/assets/initramfs.xz' || path === '/assets/tampered.xz' ? { file: good } : undefined),
    });
    app.get('/assets/initramfs.xz', async (_req, reply) => reply.send(readFileSync(good)));
    app.get('/assets/tampered.xz', async (_req, reply) => reply.send(readFileSync(bad)));
    app.get('/second.ipxe', async (_req, reply) => reply.type('text/plain').send('#!ipxe\necho HEPH-E2E-SECOND-SCRIPT-TRUSTED\necho HEPH-E2E-DONE\n'));
    app.get('/unsigned.ipxe', async (_req, reply) => reply.type('text/plain').send('#!ipxe\necho HEPH-E2E-UNSIGNED-RAN\n'));
    app.get('/ipxe', async (req, reply) =>
      reply.type('text/plain').send(
        [
          '#!ipxe',
          `echo HEPH-E2E-SCRIPT-TRUSTED over ${req.protocol} one-time-token ${randomBytes(16).toString('hex')}`,
          `imgfetch --name good ${HEPH}/assets/initramfs.xz && imgverify good ${HEPH}/assets/initramfs.xz.sig && echo HEPH-E2E-ASSET-ACCEPTED || echo HEPH-E2E-ASSET-REFUSED`,
          `imgfetch --name bad ${HEPH}/assets/tampered.xz && imgverify bad ${HEPH}/assets/tampered.xz.sig && echo HEPH-E2E-TAMPERED-ACCEPTED || echo HEPH-E2E-TAMPERED-REFUSED`,
          `chain ${HEPH}/unsigned.ipxe || echo HEPH-E2E-UNSIGNED-REFUSED`,
          // A second verified chain reuses the image name of the script that is running, as heph's scripts do.
          `${verifiedChain(`${HEPH}/second.ipxe`)} || echo HEPH-E2E-SECOND-FAILED`,
          '',
        ].join('\n'),
      ),
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
    if (overHttps) {
      https = new HttpsService({ app, ca, listen: '127.0.0.1', port: 0, advertise: GUEST_FWD, ipAddresses: [], dnsNames: [], log: createLogger({ log: { level: 'silent', format: 'json' } }) });
      await https.start();
      port = https.port;
    }

    const caFile = join(tmp.path, 'ca.crt');
    writeFileSync(caFile, ca.certPem);
    const embed = join(tmp.path, 'embed.ipxe');
    writeFileSync(embed, ['#!ipxe', 'dhcp || goto failed', 'imgtrust --permanent', `${verifiedChain(`${HEPH}/ipxe?mac=\${net0/mac:hexhyp}`)} || goto failed`, ':failed', 'echo HEPH-E2E-BOOT-FAILED', ''].join('\n'));
    const build = await run('make', ['-C', SRC!, '-j2', 'bin/ipxe.lkrn', `TRUST=${caFile}`, `EMBED=${embed}`]);
    assert.equal(build.status, 0, build.err.slice(-2000));
    kernel = join(tmp.path, 'ipxe.lkrn');
    writeFileSync(kernel, readFileSync(join(SRC!, 'bin/ipxe.lkrn')));
  });
  after(async () => {
    await https?.stop();
    await app?.close();
    tmp.remove();
  });

  it('runs a signed per-machine script, accepts a signed initramfs, refuses a tampered one and an unsigned script, chains a second signed script', async (t) => {
    const qemu = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-m', '256', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-kernel', kernel,
      '-nic', `user,model=e1000,restrict=on,guestfwd=tcp:${GUEST_FWD}:${overHttps ? 443 : 80}-tcp:127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`iPXE did not finish in 240 s; console:\n${out}`)), 240_000);
        qemu.stdout.on('data', (d: Buffer) => {
          out += d.toString('latin1');
          if (/HEPH-E2E-(DONE|BOOT-FAILED)/.test(out)) (clearTimeout(t), resolve());
        });
        qemu.on('exit', () => (clearTimeout(t), reject(new Error(`qemu exited; console:\n${out}`))));
      });
    } finally {
      qemu.kill('SIGKILL');
    }
    for (const line of out.split(/\r?\n/)) if (/HEPH-E2E|Permission denied|ipxe\.org\/err/i.test(line)) t.diagnostic(line.trim());
    assert.match(out, new RegExp(`HEPH-E2E-SCRIPT-TRUSTED over ${overHttps ? 'https' : 'http'} `), out);
    assert.match(out, /HEPH-E2E-ASSET-ACCEPTED/, out);
    assert.match(out, /HEPH-E2E-TAMPERED-REFUSED/, out);
    assert.match(out, /HEPH-E2E-UNSIGNED-REFUSED/, out);
    assert.match(out, /HEPH-E2E-SECOND-SCRIPT-TRUSTED/, out);
    assert.doesNotMatch(out, /HEPH-E2E-(ASSET-REFUSED|TAMPERED-ACCEPTED|UNSIGNED-RAN|BOOT-FAILED|SECOND-FAILED)/, out);
  });
});
