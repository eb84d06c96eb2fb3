import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseSha512Sums, versionFrom } from '../../src/assets/import.ts';
import { parseRange } from '../../src/assets/serve.ts';
import { AssetStore } from '../../src/assets/store.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { tempDir } from '../helpers/heph.ts';

test('Range: single ranges, suffixes, open ends; multi-range and junk mean the whole file', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), { start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=900-', 1000), { start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-100', 1000), { start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-5000', 1000), { start: 0, end: 999 });
  assert.deepEqual(parseRange('bytes=990-5000', 1000), { start: 990, end: 999 });
  assert.equal(parseRange('bytes=1000-', 1000), 'unsatisfiable');
  assert.equal(parseRange('bytes=5-4', 1000), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 1000), 'unsatisfiable');
  for (const whole of [undefined, '', 'bytes=0-1,5-6', 'items=0-1', 'bytes=-', 'bytes=a-b', `bytes=${'0-1,'.repeat(10000)}0-1`]) assert.equal(parseRange(whole, 1000), undefined, whole);
});

test('sha512sum.txt parsing and the version in a path', () => {
  const h = 'a'.repeat(128);
  const m = parseSha512Sums(`${h}  vmlinuz-amd64\n${h.toUpperCase()} *initramfs-amd64.xz\n${h}  ../etc/passwd\nbogus line\n${'b'.repeat(127)}  short\n`);
  assert.deepEqual([...m.entries()], [['vmlinuz-amd64', h], ['initramfs-amd64.xz', h]]);
  assert.equal(versionFrom('https://github.com/siderolabs/talos/releases/download/v1.13.9'), 'v1.13.9');
  assert.equal(versionFrom('/srv/talos/v1.14.0-rc.1/'), 'v1.14.0-rc.1');
  assert.equal(versionFrom('/srv/talos/latest'), undefined);
});

test('verification is cached by file identity, and any write (even with the mtime put back) is caught', async () => {
  const d = tempDir();
  const { db } = openInventory(d.path);
  try {
    const body = randomBytes(256 * 1024);
    body[100] = 7;
    const id = createHash('sha512').update(body).digest('hex');
    mkdirSync(join(d.path, 'assets'), { recursive: true });
    const file = join(d.path, 'assets', id);
    writeFileSync(file, body, { mode: 0o400 });
    db.prepare('INSERT INTO assets (id, name, version, arch, kind, size, path, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(id, 'vmlinuz-amd64', 'v1.13.9', 'amd64', 'kernel', body.length, `assets/${id}`, 0);
    const alerts: string[] = [];
    const store = new AssetStore(db, d.path, (_a, detail) => alerts.push(detail));
    const a = store.get(id)!;
    assert.equal(await store.problem(a), undefined);
    assert.equal(store.hashes, 1);
    await Promise.all([store.problem(a), store.problem(a), store.problem(a)]);
    assert.equal(store.hashes, 1, 'an unchanged file is not hashed again');
    assert.equal(store.opens, 1, 'nor opened again: its verified descriptor is shared');
    // A response in flight keeps its descriptor when the file is replaced; the next request opens the new file.
    const inFlight = await store.open(a);
    assert.ok(inFlight.ok);
    assert.deepEqual(inFlight.head, body.subarray(0, 64 * 1024), 'the first 64 KiB are kept, read once with the descriptor');
    const replaced = `${file}.new`;
    writeFileSync(replaced, body, { mode: 0o400 });
    renameSync(replaced, file);
    assert.equal(await store.problem(a), undefined);
    assert.equal(store.opens, 2, 'a replaced file is opened anew');
    assert.equal(store.hashes, 2, 'and verified anew');
    const head = Buffer.alloc(16);
    await inFlight.fh.read(head, 0, 16, 0);
    assert.deepEqual(head, body.subarray(0, 16), 'the response in flight still reads its own descriptor');
    await inFlight.release();
    assert.equal(inFlight.fh.fd, -1, 'the retired descriptor is closed once its last user is done');
    await inFlight.release(); // twice is harmless
    const before = statSync(file);
    chmodSync(file, 0o600);
    const bytes = readFileSync(file);
    bytes[100] = 8;
    writeFileSync(file, bytes);
    utimesSync(file, before.atime, before.mtime);
    assert.match((await store.problem(a))!, /failed SHA-512 verification/);
    assert.equal(alerts.length, 1);
    assert.equal(store.hashes, 3);
    // Restoring the bytes is a new identity again: re-hashed, good again.
    bytes[100] = 7;
    writeFileSync(file, bytes);
    assert.equal(await store.problem(a), undefined);
    writeFileSync(file, Buffer.concat([bytes, Buffer.from('x')]));
    assert.match((await store.problem(a))!, /failed/);
    const gone = { ...a, path: 'assets/missing' };
    assert.match((await store.problem(gone))!, /ENOENT/);
    // Good again, then closed with the store: nothing stays open.
    writeFileSync(file, bytes);
    const kept = await store.open(a);
    assert.ok(kept.ok);
    assert.deepEqual(kept.head, bytes.subarray(0, 64 * 1024), 'a new descriptor reads its own head');
    await kept.release();
    await store.close();
    assert.equal(kept.fh.fd, -1);
  } finally {
    db.close();
    d.remove();
  }
});
