import assert from 'node:assert/strict';
import { test } from 'node:test';
import { negotiate } from '../../src/tftp/options.ts';

const limits = { maxBlksize: 1468, maxWindowsize: 16, retryTimeoutMs: 1000 };
const opts = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

test('no options: 512-byte lock-step and no OACK', () => {
  assert.deepEqual(negotiate(new Map(), 100, limits), { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] });
});

test('EDK2-style tsize+blksize: both acknowledged in request order, tsize carrying the size', () => {
  const n = negotiate(opts({ tsize: '0', blksize: '1468' }), 1048576, limits);
  assert.deepEqual(n.oack, [['tsize', '1048576'], ['blksize', '1468']]);
  assert.equal(n.blksize, 1468);
});

test('blksize above the cap is lowered to the cap; below it is granted as asked (even 8)', () => {
  assert.deepEqual(negotiate(opts({ blksize: '65464' }), 1, limits).oack, [['blksize', '1468']]);
  assert.deepEqual(negotiate(opts({ blksize: '8' }), 1, limits).oack, [['blksize', '8']]);
  assert.equal(negotiate(opts({ blksize: '8' }), 1, limits).blksize, 8);
});

test('out-of-range or unparsable values are left out of the OACK and the defaults apply', () => {
  for (const blksize of ['0', '7', '65465', 'abc', '1e3', '-1', '', ' 512', '99999999999']) {
    const n = negotiate(opts({ blksize }), 1, limits);
    assert.deepEqual(n.oack, [], blksize);
    assert.equal(n.blksize, 512);
  }
  for (const windowsize of ['0', '65536', 'x']) assert.deepEqual(negotiate(opts({ windowsize }), 1, limits).oack, []);
  for (const timeout of ['0', '256', 'x']) assert.deepEqual(negotiate(opts({ timeout }), 1, limits).oack, []);
  for (const tsize of ['1', 'enable', '']) assert.deepEqual(negotiate(opts({ tsize }), 1, limits).oack, []);
});

test('timeout is accepted exactly and drives the retransmission timer', () => {
  const n = negotiate(opts({ timeout: '3' }), 1, limits);
  assert.deepEqual(n.oack, [['timeout', '3']]);
  assert.equal(n.timeoutMs, 3000);
});

test('windowsize is capped', () => {
  assert.deepEqual(negotiate(opts({ windowsize: '64' }), 1, limits).oack, [['windowsize', '16']]);
  assert.equal(negotiate(opts({ windowsize: '4' }), 1, limits).windowsize, 4);
});

test('unknown options (utimeout, multicast) are never acknowledged', () => {
  assert.deepEqual(negotiate(opts({ utimeout: 'x'.repeat(1024), multicast: '', blksize: '1024' }), 1, limits).oack, [['blksize', '1024']]);
});
