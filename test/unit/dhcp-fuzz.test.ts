// Decoder fuzz: 100k+ inputs through the whole receive path (read → classify → answer → reply bytes). The bar:
// no exception escapes (respond() reports one as reason 'exception'), and every reply decodes and fits 1472.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { parseOption43 } from '../../src/dhcp/answer.ts';
import { decode, MAX_REPLY } from '../../src/dhcp/codec.ts';
import { respond, type RespondConfig } from '../../src/dhcp/respond.ts';
import { dhcpSettings } from '../../src/dhcp/settings.ts';
import { mutated, plausible, structured, via } from './dhcp-fixtures.ts';

const cfg: RespondConfig = {
  answer: { server: '192.0.2.10', httpPort: 8080, binaries: { bios: 'undionly.kpxe', x86_64: 'ipxe.efi', arm64: 'snp.efi' }, option43: parseOption43(dhcpSettings.shape.option43.default) },
  relayAllowed: () => true,
  rejected: () => false,
  relayPort: 67,
};

function check(buf: Uint8Array, via: 'dhcp' | 'proxy'): void {
  const out = respond(Buffer.from(buf), { via, from: { address: '10.0.0.5', port: 4011 } }, cfg);
  if (out.kind === 'malformed') assert.notEqual(out.reason, 'exception', out.detail);
  if (out.kind === 'reply') {
    assert.ok(out.bytes.length <= MAX_REPLY);
    assert.ok(decode(out.bytes).ok);
  }
}

it('fuzz: 150k inputs through read → classify → answer → reply, nothing escapes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), via, check), { numRuns: 20_000, seed: 1 });
  fc.assert(fc.property(structured, via, check), { numRuns: 50_000, seed: 2 });
  fc.assert(fc.property(mutated, via, check), { numRuns: 50_000, seed: 3 });
  // Mostly answered: the reply path gets its share.
  fc.assert(fc.property(plausible, via, check), { numRuns: 30_000, seed: 4 });
});
