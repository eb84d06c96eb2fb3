import assert from 'node:assert/strict';
import { it } from 'node:test';
import { classify } from '../../src/dhcp/classify.ts';
import { decode } from '../../src/dhcp/codec.ts';
import { RejectionSet, respondConfig, type PlainRespondConfig } from '../../src/dhcp/policy.ts';
import { respond } from '../../src/dhcp/respond.ts';
import { ovmfPxe, packet, UUID } from './dhcp-fixtures.ts';

const A = '7e57b001-0000-4000-8000-00000000000a';
const B = '7e57b001-0000-4000-8000-00000000000b';

it('rejection set: a UUID names its machine, a NIC names its machine unless it arrives with another UUID', () => {
  const set = new RejectionSet({ uuids: [A], nics: [['52:54:00:00:00:01', A], ['52:54:00:00:00:02', null]] });
  const table: [string, string | undefined, boolean, string][] = [
    ['52:54:00:00:00:09', A, true, 'the rejected UUID on any NIC'],
    ['52:54:00:00:00:01', undefined, true, 'a rejected NIC without a UUID'],
    ['52:54:00:00:00:01', A, true, 'a rejected NIC with its own UUID'],
    ['52:54:00:00:00:01', B, false, 'a rejected NIC in another box (resolve() moves it there)'],
    ['52:54:00:00:00:02', B, true, 'a NIC of a rejected machine that never told its UUID: the UUID may be its own'],
    ['52:54:00:00:00:09', B, false, 'a stranger'],
    ['52:54:00:00:00:09', undefined, false, 'a stranger without UUID'],
  ];
  for (const [mac, uuid, want, why] of table) assert.equal(set.has(uuid === undefined ? { mac } : { mac, uuid }), want, why);
  assert.equal(new RejectionSet().has({ mac: '52:54:00:00:00:01', uuid: A }), false);
  assert.equal(set.size, 3);
});

it('respondConfig: the same plain data gives the same answers, and the rejection set is read per packet', () => {
  const plain: PlainRespondConfig = { server: '10.0.0.1', httpPort: 8080, binaries: { x86_64: 'ipxe.efi' }, option43: { bios: { '6': '08' } }, relays: ['10.9.0.0/16'], relayPort: 67 };
  // The worker gets its copy through structured clone; a copy must behave the same.
  let rejected = new RejectionSet();
  const cfg = respondConfig(structuredClone(plain), () => rejected);
  const bytes = packet(ovmfPxe(), { giaddr: [10, 9, 1, 1] });
  const d = decode(bytes);
  assert.ok(d.ok);
  const c = classify(d.packet);
  assert.ok(c.ok);
  assert.equal(c.client.uuid, UUID);
  assert.equal(cfg.relayAllowed('10.9.255.1'), true);
  assert.equal(cfg.relayAllowed('10.10.0.1'), false);
  const arrival = { via: 'dhcp' as const, from: { address: '10.9.1.1', port: 67 } };
  const first = respond(bytes, arrival, cfg);
  assert.ok(first.kind === 'reply');
  assert.deepEqual(first.to, { address: '10.9.1.1', port: 67 });
  rejected = new RejectionSet({ uuids: [UUID], nics: [] });
  assert.deepEqual(respond(bytes, arrival, cfg), { kind: 'ignored', reason: 'rejected', client: c.client });
});

it('respond() writes a reply into a send slot when given one, and never past it', () => {
  const cfg = respondConfig({ server: '10.0.0.1', httpPort: 8080, binaries: { x86_64: 'ipxe.efi' }, option43: {}, relays: [], relayPort: 67 }, () => new RejectionSet());
  const slot = Buffer.alloc(1472, 0xee);
  const out = respond(packet(ovmfPxe()), { via: 'dhcp', from: { address: '0.0.0.0', port: 68 } }, cfg, slot);
  assert.equal(out.kind, 'reply');
  assert.ok(out.kind === 'reply');
  assert.equal(out.bytes.buffer, slot.buffer, 'the reply is a view of the slot');
  assert.equal(out.bytes.byteOffset, slot.byteOffset);
  const alone = respond(packet(ovmfPxe()), { via: 'dhcp', from: { address: '0.0.0.0', port: 68 } }, cfg);
  assert.ok(alone.kind === 'reply');
  assert.deepEqual(out.bytes, alone.bytes, 'the same bytes as an encode of its own (the slot was zeroed first)');
  assert.equal(slot[out.bytes.length], 0xee, 'nothing written after the reply');
});
