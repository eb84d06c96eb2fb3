// Decoder fuzz: 100k+ inputs through the whole receive path (decode → classify → answer → encode). The bar:
// no exception escapes (respond() reports one as reason 'exception'), and every reply decodes and fits 1472.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { parseOption43 } from '../../src/dhcp/answer.ts';
import { decode, MAX_REPLY } from '../../src/dhcp/codec.ts';
import { respond, type RespondConfig } from '../../src/dhcp/respond.ts';
import { dhcpSettings } from '../../src/dhcp/settings.ts';
import { biosPxe, ipxeEfi, ovmfBootServerRequest, ovmfHttp, ovmfPxe, packet } from './dhcp-fixtures.ts';

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

const seeds = [ovmfPxe(), ovmfHttp(), ipxeEfi(), biosPxe(), ovmfBootServerRequest()].map((o) => packet(o));
const via = fc.constantFrom<'dhcp' | 'proxy'>('dhcp', 'proxy');

/** A header plus options made of plausible and hostile TLVs (interesting codes, wild lengths, overload). */
const structured = fc
  .tuple(
    fc.uint8Array({ minLength: 236, maxLength: 236 }),
    fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom(0, 1, 43, 52, 53, 54, 57, 60, 61, 77, 82, 93, 94, 97, 175, 255), fc.uint8Array({ maxLength: 40 })).map(([c, v]) => [c, v.length, ...v]),
        fc.tuple(fc.constantFrom(52, 53, 93, 97), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 4 })).map(([c, l, v]) => [c, l, ...v]),
        fc.constant([53, 1, 1]),
        fc.constant([60, 9, ...Buffer.from('PXEClient')]),
        fc.constant([93, 2, 0, 7]),
      ),
      { maxLength: 30 },
    ),
    fc.boolean(),
  )
  .map(([head, opts, end]) => {
    const h = Buffer.from(head);
    h[0] = 1;
    h[1] = 1;
    h[2] = 6;
    return Buffer.concat([h, Buffer.from([0x63, 0x82, 0x53, 0x63]), Buffer.from(opts.flat()), Buffer.from(end ? [255] : [])]);
  });

/** A real firmware packet with bytes flipped, truncated or extended. */
const mutated = fc
  .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(), fc.uint8Array({ maxLength: 20 }))
  .map(([seed, flips, cut, tail]) => {
    const b = Buffer.from(seed);
    for (const [at, v] of flips) b[240 + (at % Math.max(1, b.length - 240))] = v;
    return Buffer.concat([b.subarray(0, 236 + (cut % (b.length - 235))), Buffer.from(tail)]);
  });

it('fuzz: 120k inputs through decode → classify → answer → encode, nothing escapes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), via, check), { numRuns: 20_000, seed: 1 });
  fc.assert(fc.property(structured, via, check), { numRuns: 50_000, seed: 2 });
  fc.assert(fc.property(mutated, via, check), { numRuns: 50_000, seed: 3 });
});
