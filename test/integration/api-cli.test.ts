// `heph serve` and `heph tokens` as an operator runs them: separate processes sharing one data directory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnHeph, tempDir, HEPH_BIN, REPO, type HephProcess } from '../helpers/heph.ts';

function heph(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HEPH_BIN, ...args], { cwd: REPO, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('first start and heph tokens', () => {
  const dir = tempDir();
  const dataDir = join(dir.path, 'data');
  let proc: HephProcess;
  let url: string;
  before(async () => {
    proc = await spawnHeph({
      dataDir,
      log: { level: 'info' },
      http: { listen: '127.0.0.1', port: 0 },
      grpc: { listen: '127.0.0.1', port: 0 },
      api: { port: 0, grpc: { enabled: false, port: 0 } },
    });
    const up = await proc.waitForLog((l) => l.msg === 'heph is up');
    url = `http://${(up.services as { api: { listening: { tcp: string } } }).api.listening.tcp}`;
  });
  after(async () => {
    await proc.stop();
    dir.remove();
  });

  test('the first admin token goes to a 0600 file, and the log only points at it', async () => {
    const notice = await proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('first start: an admin API token'));
    const file = join(dataDir, 'initial-admin-token');
    assert.equal(notice.file, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    const secret = token.slice(-43);
    assert.equal(secret.length, 43);
    const everything = JSON.stringify(proc.logs) + proc.stderr();
    assert.ok(!everything.includes(secret), 'the token secret is in no log line');
    const r = await fetch(`${url}/api/v1/session`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    assert.ok(!(JSON.stringify(proc.logs) + proc.stderr()).includes(secret), 'nor after it was used');
  });

  test('heph tokens create/list/revoke against the running daemon', async () => {
    const made = heph(['tokens', 'create', '--name', 'automation', '--scope', 'operator', '--set', `dataDir=${dataDir}`]);
    assert.equal(made.status, 0, made.stderr);
    const token = made.stdout.trim();
    assert.match(token, /^heph_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    assert.match(made.stderr, /shown only this once/);
    const id = token.split('_')[1]!;
    const who = await fetch(`${url}/api/v1/session`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await who.json(), { name: 'automation', scope: 'operator', csrfToken: null, expiresAt: null });
    const list = heph(['tokens', 'list', '--set', `dataDir=${dataDir}`]);
    assert.equal(list.status, 0);
    assert.match(list.stdout, new RegExp(`^${id}\\s+operator\\s+.*automation$`, 'm'));
    assert.match(list.stdout, /^\w{12}\s+admin\s+.*initial-admin$/m);
    assert.ok(!list.stdout.includes(token.slice(-43)));
    const revoked = heph(['tokens', 'revoke', id, '--set', `dataDir=${dataDir}`]);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.equal((await fetch(`${url}/api/v1/session`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
    assert.equal(heph(['tokens', 'revoke', id, '--set', `dataDir=${dataDir}`]).status, 1, 'already revoked');
    assert.equal(heph(['tokens', 'create', '--name', 'x', '--scope', 'root', '--set', `dataDir=${dataDir}`]).status, 2);
    assert.equal(heph(['tokens', 'frobnicate', '--set', `dataDir=${dataDir}`]).status, 2);
  });
});
