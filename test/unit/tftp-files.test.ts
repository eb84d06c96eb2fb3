import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileTable, normaliseName } from '../../src/tftp/files.ts';

const dir = mkdtempSync(join(tmpdir(), 'heph-tftp-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('normalisation: leading slashes, backslashes and tftp://host/ only', () => {
  assert.equal(normaliseName('ipxe.efi'), 'ipxe.efi');
  assert.equal(normaliseName('/ipxe.efi'), 'ipxe.efi');
  assert.equal(normaliseName('//ipxe.efi'), 'ipxe.efi');
  assert.equal(normaliseName('\\ipxe.efi'), 'ipxe.efi');
  assert.equal(normaliseName('efi\\ipxe.efi'), 'efi/ipxe.efi');
  assert.equal(normaliseName('tftp://192.0.2.10/ipxe.efi'), 'ipxe.efi');
  assert.equal(normaliseName('TFTP://heph:69//ipxe.efi'), 'ipxe.efi');
  assert.equal(normaliseName('./././ipxe.efi'), './././ipxe.efi');
  assert.equal(normaliseName('../../etc/passwd'), '../../etc/passwd');
  assert.equal(normaliseName('..\\..\\x'), '../../x');
  assert.equal(normaliseName('%2e%2e/x'), '%2e%2e/x');
});

test('only registered names open; traversal spellings and case variants match nothing', async () => {
  const t = new FileTable();
  t.register('ipxe.efi', Buffer.from('hello'));
  for (const raw of ['../../etc/passwd', '/etc/passwd', 'ipxe.efi/../../x', '..\\..\\x', '%2e%2e/x', './././ipxe.efi', 'IPXE.EFI', 'ipxe.efi\0', '']) {
    assert.equal(await t.open(normaliseName(raw)), undefined, raw);
  }
  for (const raw of ['ipxe.efi', '/ipxe.efi', '\\ipxe.efi', 'tftp://h/ipxe.efi']) {
    const s = await t.open(normaliseName(raw));
    assert.ok(s, raw);
    assert.equal((await s.read(0, 512)).toString(), 'hello');
  }
});

test('names that are not clean relative paths cannot be registered', () => {
  const t = new FileTable();
  for (const bad of ['', '/abs', 'a/../b', './a', 'a//b', 'a/', '..', 'a\\b', 'a b', 'a%2e']) {
    assert.throws(() => t.register(bad, Buffer.alloc(0)), /cannot be a TFTP name/, bad);
  }
  t.register('efi/arm64/ipxe.efi', Buffer.alloc(0));
  assert.deepEqual(t.names(), ['efi/arm64/ipxe.efi']);
});

test('a registered path is resolved once; a symlink swapped in later is refused', async () => {
  const real = join(dir, 'real.bin');
  writeFileSync(real, Buffer.alloc(1000, 7));
  const link = join(dir, 'link.bin');
  symlinkSync(real, link);
  const t = new FileTable();
  t.register('via-link', link);
  const s = await t.open('via-link');
  assert.equal(s?.size, 1000);
  await s?.close();
  // Replace the real file with a link to something else: the open must not follow it.
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'secret');
  unlinkSync(real);
  symlinkSync(secret, real);
  await assert.rejects(t.open('via-link'), /ELOOP/);
});

test('directories and missing files are refused at registration', () => {
  const t = new FileTable();
  mkdirSync(join(dir, 'sub'));
  assert.throws(() => t.register('d', join(dir, 'sub')), /not a regular file/);
  assert.throws(() => t.register('m', join(dir, 'missing')), /ENOENT/);
});

test('file reads cross chunk boundaries and stop at the end', async () => {
  const big = Buffer.alloc(600_000);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  const p = join(dir, 'big.bin');
  writeFileSync(p, big);
  const t = new FileTable();
  t.register('big', p);
  const s = (await t.open('big'))!;
  const parts: Buffer[] = [];
  for (let off = 0; off < s.size; off += 1468) parts.push(await s.read(off, Math.min(1468, s.size - off)));
  assert.ok(Buffer.concat(parts).equals(big));
  assert.equal((await s.read(262_000, 1468)).length, 1468);
  await s.close();
});
