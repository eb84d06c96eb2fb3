import assert from 'node:assert/strict';
import { it } from 'node:test';
import { OUTCOME_CODES, outcomeCode, OutcomeReader, OutcomeWriter } from '../../src/dhcp/outcome-log.ts';
import { ovmfPxe, packet } from './dhcp-fixtures.ts';

it('outcome codes: one per reply type and reason, each fits a byte and maps back to itself', () => {
  assert.ok(OUTCOME_CODES.length <= 256);
  OUTCOME_CODES.forEach((c, i) => assert.equal(outcomeCode(c), i, JSON.stringify(c)));
  const keys = OUTCOME_CODES.map((c) => (c.kind === 'reply' ? `reply:${c.type}` : `${c.kind}:${c.reason}`));
  assert.equal(new Set(keys).size, keys.length);
  for (const k of ['reply:offer', 'reply:ack', 'ignored:rejected', 'ignored:relay-not-allowed', 'malformed:oversize', 'malformed:exception']) assert.ok(keys.includes(k), k);
});

it('outcome log: records survive the trip through a transferred buffer, with the datagram, source and flags', () => {
  const w = new OutcomeWriter(4096);
  const a = packet(ovmfPxe(), { chaddr: [0x52, 0x54, 0, 0, 0, 1] });
  const b = Buffer.from([1, 2, 3]);
  const offer = outcomeCode({ kind: 'reply', type: 'offer' });
  const short = outcomeCode({ kind: 'malformed', reason: 'short' });
  assert.ok(w.add(0, 'dhcp', offer, true, 0x0a000032, 68, a));
  assert.ok(w.add(3, 'proxy', short, false, 0xc0000201, 4011, b));
  assert.equal(w.count, 2);
  const { records, length } = w.take();
  assert.ok(w.empty, 'the writer starts over');
  // What the main thread gets is a copy: the writer's buffer is reused at once.
  w.add(1, 'dhcp', short, false, 0, 0, Buffer.alloc(300, 0xff));
  const r = new OutcomeReader(structuredClone(records, { transfer: [records] }), length);
  assert.ok(r.next());
  assert.deepEqual([r.iface, r.via, r.code, r.hasClient, r.mac(), r.from()], [0, 'dhcp', offer, true, '52:54:00:00:00:01', { address: '10.0.0.50', port: 68 }]);
  assert.deepEqual(r.datagram(), a);
  assert.ok(r.next());
  assert.deepEqual([r.iface, r.via, r.code, r.hasClient, r.from()], [3, 'proxy', short, false, { address: '192.0.2.1', port: 4011 }]);
  assert.deepEqual(r.datagram(), b);
  assert.equal(r.next(), false);
});

it('outcome log: a full writer refuses the record instead of cutting it; a damaged length ends the walk', () => {
  const w = new OutcomeWriter(700);
  const d = Buffer.alloc(290);
  assert.ok(w.add(0, 'dhcp', 0, false, 0, 0, d));
  assert.ok(w.add(0, 'dhcp', 0, false, 0, 0, d));
  assert.equal(w.add(0, 'dhcp', 0, false, 0, 0, d), false);
  const { records, length } = w.take();
  assert.equal(length, 2 * (12 + 290));
  new Uint8Array(records).set([5, 0], 302); // second record claims 5 bytes, less than its header
  const r = new OutcomeReader(records, length);
  assert.ok(r.next());
  assert.equal(r.next(), false);
});
