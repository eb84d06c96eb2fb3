// The operator's commands, run as a person would: `heph machines|profiles|assets …` against a settings file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { openInventory } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { HEPH_BIN, REPO, tempDir } from '../helpers/heph.ts';

describe('heph machines / profiles / assets', () => {
  const dir = tempDir('heph-cli-');
  const settings = join(dir.path, 'heph.yaml');
  // Asynchronous on purpose: the release server below runs in this process and must keep answering.
  const heph = (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [HEPH_BIN, ...args, '--config', settings], { encoding: 'utf8', cwd: REPO }, (err, stdout, stderr) => {
        resolve({ status: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
      });
    });
  const kernel = randomBytes(2 * 1024 * 1024);
  const initrd = randomBytes(512 * 1024);
  const sums = [kernel, initrd].map((b) => createHash('sha512').update(b).digest('hex'));
  let mid = '';
  const server = createServer((req, res) => {
    const files: Record<string, Buffer> = {
      '/download/v1.13.9/vmlinuz-amd64': kernel,
      '/download/v1.13.9/initramfs-amd64.xz': initrd,
      '/download/v1.13.9/sha512sum.txt': Buffer.from(`${sums[0]}  vmlinuz-amd64\n${sums[1]}  initramfs-amd64.xz\n`),
    };
    const body = files[req.url ?? ''];
    res.writeHead(body ? 200 : 404, { 'content-length': String(body?.length ?? 0) }).end(body);
  });

  before(async () => {
    writeFileSync(settings, stringify({ dataDir: join(dir.path, 'data'), profiles: { dir: join(REPO, 'test/fixtures/profiles') } }));
    const { db } = openInventory(join(dir.path, 'data'));
    mid = new Machines(db).resolve({ mac: '52:54:00:00:00:42', uuid: '11111111-2222-4333-8444-555555555555', arch: 'x86_64' }).machine.id;
    db.close();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(() => {
    server.close();
    dir.remove();
  });

  test('assets import from a URL verifies and records both files; list and verify see them', async () => {
    const port = (server.address() as { port: number }).port;
    const r = (await heph('assets', 'import', `http://127.0.0.1:${port}/download/v1.13.9`));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /imported initramfs-amd64\.xz \(amd64/);
    assert.match(r.stdout, /imported vmlinuz-amd64 \(amd64, 2\.0 MiB\) sha512 [0-9a-f]{16}… verified/);
    assert.match(r.stderr, /vmlinuz-amd64: 2\/2 MiB \(100%\)/);
    const list = (await heph('assets', 'list'));
    assert.match(list.stdout, /v1\.13\.9\s+amd64\s+vmlinuz-amd64/);
    assert.equal((await heph('assets', 'verify')).status, 0);
    const missing = (await heph('assets', 'import', `http://127.0.0.1:${port}/download/v9.9.9`));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /HTTP 404/);
  });

  test('profiles validate, list, show (without secrets) and which', async () => {
    const v = (await heph('profiles', 'validate'));
    assert.equal(v.status, 1, 'the fixture has a deliberately broken profile');
    assert.match(v.stderr, /profile broken/);
    assert.doesNotMatch(v.stderr, /profile worker/);
    assert.match((await heph('profiles', 'list')).stdout, /worker\s+v1\.13\.9\s+machine\s+auto-rack\(auto-accept\),everything/);
    const show = (await heph('profiles', 'show', 'worker'));
    assert.match(show.stdout, /talosVersion: v1\.13\.9/);
    assert.doesNotMatch(show.stdout, /c2VjcmV0/);
    const which = (await heph('profiles', 'which', '52:54:00:00:00:42'));
    assert.equal(which.status, 0, which.stderr);
    assert.match(which.stdout, new RegExp(`${mid}: profile worker — selector everything matches 0 keys`));
    assert.match(which.stdout, /next network boot: hold — waiting for an operator/);
  });

  test('machines list, accept, reprovision, reject, assign', async () => {
    assert.match((await heph('machines', 'list')).stdout, new RegExp(`${mid}\\s+discovered\\s+pending\\s+52:54:00:00:00:42`));
    assert.equal((await heph('machines', 'reprovision', mid)).status, 2, 'only accepted machines can be reprovisioned');
    assert.equal((await heph('machines', 'accept', '11111111-2222-4333-8444-555555555555')).status, 0);
    assert.match((await heph('profiles', 'which', mid)).stdout, /next network boot: install — accepted, state discovered: install profile worker/);
    assert.equal((await heph('machines', 'reprovision', mid)).status, 0);
    assert.equal((await heph('machines', 'assign', mid, 'nope')).status, 2);
    assert.equal((await heph('machines', 'assign', mid, 'broken')).status, 0);
    const show = (await heph('machines', 'show', mid));
    assert.match(show.stdout, /acceptance: accepted/);
    assert.match(show.stdout, /reprovision: true/);
    assert.match(show.stdout, /profile: broken\n/);
    assert.match(show.stdout, /machine\.accept accepted by an operator/);
    assert.equal((await heph('machines', 'reject', mid)).status, 0);
    assert.match((await heph('profiles', 'which', mid)).stdout, /next network boot: local — rejected/);
    assert.equal((await heph('machines', 'show', 'm-nonexistent')).status, 2);
  });
});
