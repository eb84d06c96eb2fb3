import assert from 'node:assert/strict';
import { it } from 'node:test';
import { relayMatcher } from '../../src/dhcp/policy.ts';
import { dhcpSettings } from '../../src/dhcp/settings.ts';
import { validate } from '../../src/schema.ts';

it('dhcp.option43: accepts per-family hex sub-options, rejects what would not encode', () => {
  const ok = validate(dhcpSettings.shape, { option43: { x86_64: { '6': '08', '10': '00:50:58:45' } } });
  assert.deepEqual(ok.option43, { x86_64: { '6': '08', '10': '00:50:58:45' } });
  for (const [bad, why] of [
    [{ ia32: {} }, /expected one of bios, x86_64, arm64/],
    [{ bios: { '0': '08' } }, /code must be 1..254/],
    [{ bios: { '255': '08' } }, /code must be 1..254/],
    [{ bios: { '6': 'zz' } }, /hex bytes/],
    [{ bios: { '6': '0' } }, /hex bytes/],
    [{ bios: { '1': 'aa'.repeat(200), '2': 'bb'.repeat(60) } }, /exceed 255 bytes/],
    [{ bios: ['08'] }, /mapping/],
  ] as const) {
    assert.throws(() => validate(dhcpSettings.shape, { option43: bad }), why);
  }
});

it('dhcp.relays: addresses and CIDR ranges, nothing else', () => {
  assert.deepEqual(validate(dhcpSettings.shape, { relays: ['10.1.0.0/16', '192.0.2.1'] }).relays, ['10.1.0.0/16', '192.0.2.1']);
  assert.throws(() => validate(dhcpSettings.shape, { relays: ['10.1.0.0/33'] }));
  assert.throws(() => validate(dhcpSettings.shape, { relays: ['relay.example'] }));
  const allowed = relayMatcher(['10.1.0.0/16', '192.0.2.1', '198.51.100.128/25']);
  assert.equal(allowed('10.1.255.7'), true);
  assert.equal(allowed('10.2.0.1'), false);
  assert.equal(allowed('192.0.2.1'), true);
  assert.equal(allowed('192.0.2.2'), false);
  assert.equal(allowed('198.51.100.200'), true);
  assert.equal(allowed('198.51.100.100'), false);
  assert.equal(relayMatcher([])('10.1.0.1'), false, 'no relays configured: relayed requests are not answered');
  assert.equal(relayMatcher(['0.0.0.0/0'])('203.0.113.9'), true);
});
