import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBootClaims, parseHostname, parseMac, parseSmbiosText, parseUuid, peerAddress, talosArch } from '../../src/ipxe/identity.ts';

test('MACs: colon and hexhyp forms normalise; anything else is refused', () => {
  assert.equal(parseMac('52-54-00-AB-cd-01'), '52:54:00:ab:cd:01');
  assert.equal(parseMac('52:54:00:ab:cd:01'), '52:54:00:ab:cd:01');
  for (const bad of ['', '52:54:00:ab:cd', '52:54-00:ab:cd:01', '5254.00ab.cd01', '525400abcd01', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '${net0/mac}', '52:54:00:ab:cd:01\nchain http://evil', ' 52:54:00:ab:cd:01'])
    assert.equal(parseMac(bad), undefined, JSON.stringify(bad));
});

test('UUIDs: canonical lowercase; all-zero and all-F are placeholders, not identities', () => {
  assert.deepEqual(parseUuid('4C4C4544-0042-3510-8051-B4C04F4A4D32'), { ok: true, uuid: '4c4c4544-0042-3510-8051-b4c04f4a4d32' });
  assert.deepEqual(parseUuid('00000000-0000-0000-0000-000000000000'), { ok: true, uuid: undefined, placeholder: true });
  assert.deepEqual(parseUuid('FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'), { ok: true, uuid: undefined, placeholder: true });
  for (const bad of ['{4c4c4544-0042-3510-8051-b4c04f4a4d32}', '4c4c4544004235108051b4c04f4a4d32', '4c4c4544-0042-3510-8051-b4c04f4a4d321', '${uuid}'])
    assert.deepEqual(parseUuid(bad), { ok: false }, bad);
});

test('hostnames, SMBIOS text and arches', () => {
  assert.equal(parseHostname('Node-1.Lab.example'), 'node-1.lab.example');
  for (const bad of ['-a', 'a_b', 'a..b', 'a\nchain', 'x'.repeat(64), '#!ipxe', '{{.}}']) assert.equal(parseHostname(bad), undefined, bad);
  assert.equal(parseSmbiosText('PowerEdge R640'), 'PowerEdge R640');
  for (const junk of ['To Be Filled By O.E.M.', 'Default string', '0000000', 'a\nb', '${env}', 'x;reboot']) assert.equal(parseSmbiosText(junk), undefined, junk);
  assert.equal(talosArch('x86_64'), 'amd64');
  assert.equal(talosArch('arm64'), 'arm64');
  assert.equal(talosArch('riscv64'), undefined);
  assert.equal(peerAddress('::ffff:192.0.2.7'), '192.0.2.7');
});

test('boot claims: a clean chain-script query', () => {
  const r = parseBootClaims({ mac: '52-54-00-00-00-01', uuid: '4c4c4544-0042-3510-8051-b4c04f4a4d32', serial: 'To Be Filled By O.E.M.', hostname: '', arch: 'x86_64', platform: 'efi', manufacturer: 'QEMU', product: 'Standard PC (Q35 + ICH9, 2009)' });
  assert.ok(r.ok);
  assert.deepEqual(r.claims, { mac: '52:54:00:00:00:01', uuid: '4c4c4544-0042-3510-8051-b4c04f4a4d32', arch: 'x86_64', platform: 'efi', manufacturer: 'QEMU', product: 'Standard PC (Q35 + ICH9, 2009)' });
  assert.deepEqual(r.dropped, ['serial']);
});

test('boot claims: injection attempts and junk are refused', () => {
  const refused: Record<string, unknown>[] = [
    { mac: '52:54:00:00:00:01\nchain http://evil/' },
    { mac: '${net0/mac}' },
    { mac: '52:54:00:00:00:01', hostname: 'a\nchain http://evil/' },
    { mac: '52:54:00:00:00:01', hostname: '#!ipxe' },
    { mac: '52:54:00:00:00:01', uuid: '{{.}}' },
    { mac: '52:54:00:00:00:01', evil: 'x' },
    { mac: ['52:54:00:00:00:01', '52:54:00:00:00:02'] },
    { mac: '52:54:00:00:00:01', serial: 'x'.repeat(65536) },
    { uuid: '00000000-0000-0000-0000-000000000000' },
    {},
  ];
  for (const q of refused) assert.equal(parseBootClaims(q).ok, false, JSON.stringify(q).slice(0, 80));
  const dropped = parseBootClaims({ mac: '52:54:00:00:00:01', arch: 'sparc', platform: 'linux', product: 'a;b', hostname: 'my_host' });
  assert.ok(dropped.ok);
  assert.deepEqual(dropped.dropped.sort(), ['arch', 'hostname', 'platform', 'product']);
  assert.equal(dropped.claims.hostname, undefined);
});
