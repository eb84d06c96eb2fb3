// Fuzz the TFTP request path: datagram decode and option negotiation, on random bytes, on structured requests,
// and on real firmware requests with bytes flipped. Bar: nothing throws; what decodes obeys RFC 1350/2347 limits;
// negotiation grants only what was asked for, within the server's limits.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { decode, encodeRequest, MAX_REQUEST, Op } from '../../src/tftp/codec.ts';
import { negotiate, type Limits } from '../../src/tftp/options.ts';
import { params } from './fuzz-budget.ts';

const LIMITS: Limits = { maxBlksize: 1468, maxWindowsize: 64, retryTimeoutMs: 1000 };

function check(buf: Buffer): void {
  const p = decode(buf);
  if (p.op === 'malformed') return;
  if (p.op === Op.RRQ || p.op === Op.WRQ) {
    assert.ok(buf.length <= MAX_REQUEST, 'a request longer than 512 octets is malformed');
    assert.ok(!p.filename.includes('\0') && !p.mode.includes('\0'));
    assert.ok(p.options.size <= 16);
    for (const name of p.options.keys()) assert.equal(name, name.toLowerCase());
    const n = negotiate(p.options, 850_528, LIMITS);
    assert.ok(n.blksize >= 8 && n.blksize <= LIMITS.maxBlksize, `blksize ${n.blksize}`);
    assert.ok(n.windowsize >= 1 && n.windowsize <= LIMITS.maxWindowsize, `windowsize ${n.windowsize}`);
    assert.ok(n.timeoutMs > 0);
    for (const [name] of n.oack) assert.ok(p.options.has(name), `OACK names only requested options (${name})`);
  }
  if (p.op === Op.DATA) assert.ok(p.block >= 0 && p.block <= 0xffff);
}

const EDK2 = encodeRequest(Op.RRQ, 'ipxe.efi', 'octet', [['tsize', '0'], ['blksize', '1468'], ['windowsize', '4']]);
const IPXE = encodeRequest(Op.RRQ, 'undionly.kpxe', 'octet', [['blksize', '1432'], ['tsize', '0']]);

const word = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABC0123456789._-/\\ \x01\xff'.split('')), maxLength: 40 });
const structured = fc
  .tuple(
    fc.constantFrom(1, 2, 3, 4, 5, 6, 0, 7, 255),
    word,
    fc.constantFrom('octet', 'netascii', 'OCTET', 'mail', ''),
    fc.array(fc.tuple(fc.constantFrom('blksize', 'BLKSIZE', 'tsize', 'timeout', 'windowsize', 'multicast', 'x'), fc.oneof(fc.nat().map(String), word, fc.constant('-1'), fc.constant('99999999999'))), { maxLength: 20 }),
    fc.boolean(),
  )
  .map(([op, file, mode, opts, terminated]) => {
    const parts = [file, mode, ...opts.flat()];
    const body = Buffer.from(parts.join('\0') + (terminated ? '\0' : ''), 'latin1');
    const head = Buffer.alloc(2);
    head.writeUInt16BE(op);
    return Buffer.concat([head, body]);
  });

const mutated = fc
  .tuple(fc.constantFrom(EDK2, IPXE), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(), fc.uint8Array({ maxLength: 600 }))
  .map(([seed, flips, cut, tail]) => {
    const b = Buffer.from(seed);
    for (const [at, v] of flips) b[at % b.length] = v;
    return Buffer.concat([b.subarray(0, cut % (b.length + 1)), Buffer.from(tail)]);
  });

it('fuzz: TFTP decode + negotiate on random, structured and mutated firmware requests', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), (b) => check(Buffer.from(b))), params(11, 20_000));
  fc.assert(fc.property(structured, check), params(12, 20_000));
  fc.assert(fc.property(mutated, check), params(13, 20_000));
});

it('fuzz: every well-formed read request round-trips through encodeRequest/decode', () => {
  const name = fc.string({ unit: fc.constantFrom(...'abcXYZ019._-'.split('')), minLength: 1, maxLength: 60 });
  fc.assert(
    fc.property(name, fc.uniqueArray(fc.tuple(fc.constantFrom('blksize', 'tsize', 'timeout', 'windowsize'), fc.nat({ max: 70000 }).map(String)), { selector: ([k]) => k, maxLength: 4 }), (file, opts) => {
      const p = decode(encodeRequest(Op.RRQ, file, 'octet', opts));
      assert.ok(p.op === Op.RRQ);
      assert.equal(p.filename, file);
      assert.deepEqual([...p.options], opts);
    }),
    params(14, 5_000),
  );
});
