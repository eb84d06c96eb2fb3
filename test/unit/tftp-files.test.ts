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

test('only registered names are found; traversal spellings and case variants match nothing', () => {
  const t = new FileTable();
  t.register('ipxe.efi', Buffer.from('hello'));
  for (const raw of ['../../etc/passwd', '/etc/passwd', 'ipxe.efi/../../x', '..\\..\\x', '%2e%2e/x', './././ipxe.efi', 'IPXE.EFI', 'ipxe.efi\0', '']) {
    assert.equal(t.get(normaliseName(raw)), undefined, raw);
  }
  for (const raw of ['ipxe.efi', '/ipxe.efi', '\\ipxe.efi', 'tftp://h/ipxe.efi']) assert.equal(t.get(normaliseName(raw))?.toString(), 'hello', raw);
});

test('names that are not clean relative paths cannot be registered', () => {
  const t = new FileTable();
  for (const bad of ['', '/abs', 'a/../b', './a', 'a//b', 'a/', '..', 'a\\b', 'a b', 'a%2e']) {
    assert.throws(() => t.register(bad, Buffer.alloc(0)), /cannot be a TFTP name/, bad);
  }
  t.register('efi/arm64/ipxe.efi', Buffer.alloc(0));
  assert.deepEqual(t.names(), ['efi/arm64/ipxe.efi']);
  assert.equal(t.unregister('efi/arm64/ipxe.efi'), true);
  assert.deepEqual(t.names(), []);
});

test('a registered path is read once through its links; what happens on disk later changes nothing', () => {
  const real = join(dir, 'real.bin');
  writeFileSync(real, Buffer.alloc(1000, 7));
  const link = join(dir, 'link.bin');
  symlinkSync(real, link);
  const t = new FileTable();
  t.register('via-link', link);
  // Swap the real file for a link to a secret: the served bytes stay the registered ones.
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'secret');
  unlinkSync(real);
  symlinkSync(secret, real);
  assert.ok(t.get('via-link')?.equals(Buffer.alloc(1000, 7)));
});

test('directories and missing files are refused at registration', () => {
  const t = new FileTable();
  mkdirSync(join(dir, 'sub'));
  assert.throws(() => t.register('d', join(dir, 'sub')), /not a regular file/);
  assert.throws(() => t.register('m', join(dir, 'missing')), /ENOENT/);
});
