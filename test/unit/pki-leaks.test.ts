import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { findLeaks } from '../helpers/leaks.ts';

// The checker guards every log test, so it is tested on what it must catch and on what it must let through.
describe('log leak finder', () => {
  const token = randomBytes(32).toString('base64url');
  const apiToken = `heph_${'a1b2c3d4e5f6'}_${randomBytes(32).toString('base64url')}`;

  it('catches PEM blocks, tokens, keys and encrypted values, also inside JSON lines', () => {
    const lines = [
      JSON.stringify({ level: 'info', msg: 'cert', pem: '-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n' }),
      JSON.stringify({ level: 'info', msg: 'fetch', url: `/config/${token}` }),
      `{"msg":"auth","header":"Bearer ${apiToken}"}`,
      JSON.stringify({ key: randomBytes(32).toString('base64') }),
      JSON.stringify({ value: 'hephenc:v1:0123456789abcdef:AAAAbbbbCCCC' }),
      JSON.stringify({ der: randomBytes(300).toString('base64') }),
    ];
    const kinds = findLeaks(lines).map((l) => `${l.line}:${l.kind}`);
    for (const want of ['1:pem', '2:random-token', '3:api-token', '4:base64-key', '5:encrypted-value', '6:base64-key']) assert.ok(kinds.includes(want), `${want} in ${kinds.join(' ')}`);
    assert.ok(findLeaks(lines).every((l) => !l.excerpt.includes(token)), 'the report does not repeat the secret');
  });

  it('catches a known secret given explicitly', () => {
    assert.deepEqual(findLeaks([{ msg: 'x', detail: 'the password is hunter2hunter2' }], ['hunter2hunter2']).map((l) => l.kind), ['known-secret']);
  });

  it('lets ordinary log lines through', () => {
    const lines = [
      { level: 'info', time: '2026-11-22T04:00:00.000Z', msg: 'heph is up', advertise: '192.0.2.10', database: '/var/lib/heph/heph.db' },
      { level: 'info', mac: '52:54:00:12:34:56', uuid: '8c3d9c1e-5b7a-4f4e-9a51-2f0c3e8b7d11', machine: 'm-3fk2x9q1', msg: 'script served' },
      { level: 'info', caFingerprint: '1C:98:53:76:A1:1E:4B:2B:64:BD:2D:A0:90:5A:FE:4A:E8:8F:2D:6F:D7:D3:86:4E:51:FD:91:07:9E:1B:2A:8D', sha512: 'ab'.repeat(64) },
      { level: 'info', asset: 'initramfs-amd64.xz', path: '/assets/v1.13.9/amd64/initramfs-amd64.xz', secretsKeyId: '0123456789abcdef' },
    ];
    assert.deepEqual(findLeaks(lines), []);
  });
});
