import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { dataHeader, decode, encodeError, encodeOack, encodeRequest, ErrorCode, MAX_REQUEST, Op, printable } from '../../src/tftp/codec.ts';

test('an RRQ decodes with a lower-cased mode and lower-cased option names, first duplicate winning', () => {
  const p = decode(encodeRequest(Op.RRQ, 'ipxe.efi', 'OCTET', [['BlkSize', '1468'], ['tsize', '0'], ['blksize', '8']]));
  assert.deepEqual(p, { op: Op.RRQ, filename: 'ipxe.efi', mode: 'octet', options: new Map([['blksize', '1468'], ['tsize', '0']]) });
});

test('a WRQ decodes as a WRQ', () => {
  assert.equal(decode(encodeRequest(Op.WRQ, 'x', 'octet')).op, Op.WRQ);
});

test('datagrams of 0 to 3 bytes are short, whatever the opcode', () => {
  for (const op of [0, 1, 2, 3, 4, 5, 6, 7, 255]) {
    for (const len of [0, 1, 2, 3]) {
      const b = Buffer.alloc(len);
      if (len >= 2) b.writeUInt16BE(op, 0);
      const p = decode(b);
      assert.equal(p.op, 'malformed');
      assert.equal(p.op === 'malformed' && p.why, 'short');
    }
  }
});

test('requests without a NUL, without a mode, or over 512 bytes are malformed', () => {
  assert.deepEqual(decode(Buffer.from('\0\x01ipxe.efi', 'latin1')), { op: 'malformed', why: 'unterminated', opcode: 1 });
  assert.deepEqual(decode(Buffer.from('\0\x01ipxe.efi\0', 'latin1')), { op: 'malformed', why: 'no-mode', opcode: 1 });
  assert.deepEqual(decode(Buffer.from('\0\x01ipxe.efi\0\0', 'latin1')), { op: 'malformed', why: 'no-mode', opcode: 1 });
  assert.deepEqual(decode(Buffer.from('\0\x01ipxe.efi\0octet\0blksize\x001468', 'latin1')), { op: 'malformed', why: 'unterminated', opcode: 1 });
  assert.deepEqual(decode(encodeRequest(Op.RRQ, 'a'.repeat(1400), 'octet')), { op: 'malformed', why: 'too-long', opcode: 1 });
  assert.equal(decode(encodeRequest(Op.RRQ, 'a'.repeat(MAX_REQUEST - 9), 'octet')).op, Op.RRQ);
});

test('a trailing option name without a value is ignored; options past 16 are ignored', () => {
  const p = decode(Buffer.from('\0\x01f\0octet\0tsize\x000\0blksize\0', 'latin1'));
  assert.ok(p.op === Op.RRQ);
  assert.deepEqual([...p.options.keys()], ['tsize']);
  const many = Array.from({ length: 40 }, (_, i) => [`o${i}`, '1'] as const);
  const q = decode(encodeRequest(Op.RRQ, 'f', 'octet', many));
  assert.ok(q.op === Op.RRQ);
  assert.equal(q.options.size, 16);
});

test('ACK, DATA and ERROR decode; an ERROR without a NUL keeps the bytes it has', () => {
  assert.deepEqual(decode(Buffer.from([0, 4, 0xff, 0xff])), { op: Op.ACK, block: 65535 });
  const d = decode(Buffer.from([0, 3, 0, 7, 1, 2, 3]));
  assert.ok(d.op === Op.DATA);
  assert.equal(d.block, 7);
  assert.deepEqual([...d.data], [1, 2, 3]);
  assert.deepEqual(decode(Buffer.from('\0\x05\0\x08User aborted the transfer\0', 'latin1')), { op: Op.ERROR, code: 8, message: 'User aborted the transfer' });
  assert.deepEqual(decode(Buffer.from([0, 5, 0, 8])), { op: Op.ERROR, code: 8, message: '' });
  assert.deepEqual(decode(Buffer.from('\0\x05\0\x01abc', 'latin1')), { op: Op.ERROR, code: 1, message: 'abc' });
});

test('unknown opcodes are malformed', () => {
  assert.deepEqual(decode(Buffer.from([0, 9, 0, 0])), { op: 'malformed', why: 'unknown-opcode', opcode: 9 });
});

test('encoders produce the RFC layouts', () => {
  assert.deepEqual([...dataHeader(65536)], [0, 3, 0, 0]);
  assert.deepEqual([...dataHeader(65535)], [0, 3, 0xff, 0xff]);
  assert.deepEqual(encodeError(ErrorCode.NOT_FOUND, 'File not found'), Buffer.from('\0\x05\0\x01File not found\0', 'latin1'));
  assert.deepEqual(encodeOack([['blksize', '1468'], ['tsize', '99']]), Buffer.from('\0\x06blksize\x001468\0tsize\x0099\0', 'latin1'));
  assert.deepEqual(encodeOack([]), Buffer.from([0, 6]));
});

test('printable escapes control bytes and truncates', () => {
  assert.equal(printable('a\nb\x00\xff'), 'a\\x0ab\\x00\\xff');
  assert.equal(printable('x'.repeat(300)).length, 129);
});

test('decode never throws on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 700 }), fc.integer({ min: 0, max: 7 }), (bytes, op) => {
      const b = Buffer.from(bytes);
      if (b.length >= 2) b.writeUInt16BE(op, 0);
      decode(b);
    }),
    { numRuns: 5000 },
  );
});
