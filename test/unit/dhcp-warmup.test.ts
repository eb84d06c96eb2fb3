import assert from 'node:assert/strict';
import { it } from 'node:test';
import { RejectionSet, respondConfig } from '../../src/dhcp/policy.ts';
import { respond } from '../../src/dhcp/respond.ts';
import { warmupRequests } from '../../src/dhcp/warmup.ts';

it('the warm-up requests walk every path of respond(): each firmware kind, relay, 4011, not PXE, malformed', () => {
  const cfg = respondConfig({ server: '10.0.0.1', httpPort: 8080, binaries: { bios: 'undionly.kpxe', x86_64: 'ipxe.efi' }, option43: { bios: { '6': '08' } }, relays: ['192.0.2.1'], relayPort: 67 }, () => new RejectionSet());
  const got = warmupRequests().map(({ bytes, arrival }) => {
    const o = respond(bytes, arrival, cfg);
    return o.kind === 'reply' ? `${o.type} ${o.file} ${o.to.address}:${o.to.port}` : `${o.kind} ${o.reason}`;
  });
  assert.deepEqual(got, [
    'offer ipxe.efi 255.255.255.255:68',
    'offer undionly.kpxe 255.255.255.255:68',
    'offer http://10.0.0.1:8080/boot.ipxe 255.255.255.255:68',
    'offer http://10.0.0.1:8080/ipxe.efi 255.255.255.255:68',
    'offer ipxe.efi 192.0.2.1:67',
    'ack ipxe.efi 192.0.2.50:4011',
    'ignored not-pxe',
    'malformed short',
  ]);
});
