// `heph serve` as an operator runs it: after a whole install flow (including refused and failing config requests),
// neither the token nor the config body appears anywhere in the daemon's output.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { importRelease } from '../../src/assets/import.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { REPO, spawnHeph, tempDir } from '../helpers/heph.ts';

function get(url: string, from: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    request(url, { localAddress: from }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    })
      .on('error', reject)
      .end();
  });
}

test('tokens and config bodies never reach the logs', async () => {
  const dir = tempDir('heph-logs-');
  const dataDir = join(dir.path, 'data');
  const k = randomBytes(8192);
  const i = randomBytes(8192);
  const sum = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
  writeFileSync(join(dir.path, 'vmlinuz-amd64'), k);
  writeFileSync(join(dir.path, 'initramfs-amd64.xz'), i);
  writeFileSync(join(dir.path, 'sha512sum.txt'), `${sum(k)}  vmlinuz-amd64\n${sum(i)}  initramfs-amd64.xz\n`);
  const { db } = openInventory(dataDir);
  await importRelease({ db, dataDir, source: dir.path, version: 'v1.13.9' });
  const id = new Machines(db).resolve({ mac: '52:54:00:00:00:77' }).machine.id;
  new Machines(db).update(id, { acceptance: 'accepted' });
  db.close();
  const port = 20000 + Math.floor(Math.random() * 20000);
  const heph = await spawnHeph({ dataDir, log: { level: 'trace' }, http: { listen: '127.0.0.1', port }, grpc: { listen: '127.0.0.1', port: 0 }, kmsg: { listen: '127.0.0.1', port: 0 }, profiles: { dir: join(REPO, 'test/fixtures/profiles') } });
  try {
    const base = `http://127.0.0.1:${port}`;
    const script = await get(`${base}/ipxe?mac=52-54-00-00-00-77&arch=x86_64&platform=efi`, '127.0.0.5');
    const url = /talos\.config=http:\/\/[^/]+(\/config\/([A-Za-z0-9_-]{43}))/.exec(script.text);
    assert.ok(url, script.text);
    const [, path, token] = url;
    assert.equal((await get(`${base}${path}`, '127.0.0.6')).status, 403);
    const cfg = await get(`${base}${path}`, '127.0.0.5');
    assert.equal(cfg.status, 200);
    await heph.waitForLog((l) => l.msg === 'config served');
    const out = JSON.stringify(heph.logs) + heph.stderr();
    assert.ok(!out.includes(token!), 'the token is in the logs');
    assert.ok(!out.includes('c2VjcmV0c2VjcmV0'), 'the cluster secret is in the logs');
    assert.ok(heph.logs.some((l) => l.msg === 'boot decision' && (l.decision as { action: string }).action === 'install'));
    assert.ok(heph.logs.some((l) => l.msg === 'ALERT: config token presented from another IP' && l.ip === '127.0.0.6'));
  } finally {
    await heph.stop();
    dir.remove();
  }
});

test('an asset tampered with while heph was down is caught at startup: ALERT logged, /healthz says which', async () => {
  const dir = tempDir('heph-logs-');
  const dataDir = join(dir.path, 'data');
  const k = randomBytes(8192);
  writeFileSync(join(dir.path, 'vmlinuz-amd64'), k);
  writeFileSync(join(dir.path, 'sha512sum.txt'), `${createHash('sha512').update(k).digest('hex')}  vmlinuz-amd64\n`);
  const { db } = openInventory(dataDir);
  const [a] = await importRelease({ db, dataDir, source: dir.path, version: 'v1.13.9' });
  db.close();
  const file = join(dataDir, 'assets', a!.id);
  chmodSync(file, 0o600);
  writeFileSync(file, Buffer.concat([k.subarray(0, 100), Buffer.from('X'), k.subarray(101)]));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const heph = await spawnHeph({ dataDir, http: { listen: '127.0.0.1', port }, grpc: { listen: '127.0.0.1', port: 0 }, kmsg: { listen: '127.0.0.1', port: 0 } });
  try {
    const alert = await heph.waitForLog((l) => l.msg === 'ALERT: asset failed verification; it will not be served');
    assert.equal(alert.asset, 'vmlinuz-amd64');
    const health = JSON.parse((await get(`http://127.0.0.1:${port}/healthz`, '127.0.0.1')).text) as { services: { boot: { detail: string } } };
    assert.match(health.services.boot.detail, /asset refused: vmlinuz-amd64 v1\.13\.9/);
  } finally {
    await heph.stop();
    dir.remove();
  }
});
