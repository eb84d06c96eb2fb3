import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeRequest, ErrorCode, Op } from '../../src/tftp/codec.ts';
import { decide, requestKey, type RequestLimits, type RequestState } from '../../src/tftp/requests.ts';

const limits: RequestLimits = { maxBlksize: 1468, maxWindowsize: 64, retryTimeoutMs: 1000, maxTransfers: 2, maxTransfersPerClient: 1 };
const files = new Map([['ipxe.efi', Buffer.alloc(3000)]]);
const state = (over: Partial<RequestState> = {}): RequestState => ({ files, running: () => false, total: 0, perClient: () => 0, ...over });
const rrq = (name: string, options: [string, string][] = [], mode = 'octet') => encodeRequest(Op.RRQ, name, mode, options);

test('a known name in octet mode starts a transfer with the negotiated options', () => {
  const d = decide(rrq('/ipxe.efi', [['blksize', '9000'], ['tsize', '0']]), '192.0.2.1', '192.0.2.9', 2000, state(), limits);
  assert.ok(d.do === 'start');
  assert.equal(d.file, 'ipxe.efi');
  assert.deepEqual(d.n.oack, [['blksize', '1468'], ['tsize', '3000']]);
});

test('refusals carry the error code a client needs; stray packets and repeats are dropped unanswered', () => {
  const code = (msg: Buffer, s = state()) => {
    const d = decide(msg, '192.0.2.1', '192.0.2.9', 2000, s, limits);
    return d.do === 'refuse' ? [d.kind, d.code] : [d.do, d.do === 'drop' ? d.kind : ''];
  };
  assert.deepEqual(code(rrq('../ipxe.efi')), ['not_found', ErrorCode.NOT_FOUND]);
  assert.deepEqual(code(encodeRequest(Op.WRQ, 'ipxe.efi', 'octet')), ['write_request', ErrorCode.ACCESS_VIOLATION]);
  assert.deepEqual(code(rrq('ipxe.efi', [], 'netascii')), ['bad_mode', ErrorCode.ILLEGAL_OPERATION]);
  assert.deepEqual(code(Buffer.from([0, 1, 0])), ['malformed', ErrorCode.ILLEGAL_OPERATION]);
  assert.deepEqual(code(Buffer.from([0, 4, 0, 1])), ['drop', 'stray_packet']);
  assert.deepEqual(code(Buffer.from([0, 3])), ['drop', 'short_packet']);
  const key = requestKey('192.0.2.1', '192.0.2.9', 2000);
  assert.deepEqual(code(rrq('ipxe.efi'), state({ running: (k) => k === key })), ['drop', 'duplicate_request']);
  assert.deepEqual(code(rrq('ipxe.efi'), state({ total: 2 })), ['busy', ErrorCode.UNDEFINED]);
  assert.deepEqual(code(rrq('ipxe.efi'), state({ perClient: (ip) => (ip === '192.0.2.9' ? 1 : 0) })), ['busy', ErrorCode.UNDEFINED]);
});
