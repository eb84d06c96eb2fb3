import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Window } from '../../src/tftp/window.ts';

/** A send step for consecutive blocks, written as the list (Window returns the range). */
const send = (...blocks: number[]) => ({ do: 'send', from: blocks[0], to: blocks.at(-1) });

test('lock-step without OACK: DATA 1 first, each ACK brings the next, the short block ends it', () => {
  const w = new Window(1000, 512, 1, false, 5);
  assert.equal(w.last, 2);
  assert.deepEqual(w.start(), send(1));
  assert.deepEqual(w.ack(1), send(2));
  assert.deepEqual(w.ack(2), { do: 'done' });
  assert.deepEqual(w.range(2), { offset: 512, length: 512 });
});

test('an exact multiple of blksize ends with an empty block; an empty file is one empty block', () => {
  assert.equal(new Window(1024, 512, 1, false, 5).last, 3);
  const w = new Window(0, 512, 1, false, 5);
  assert.deepEqual(w.start(), send(1));
  assert.deepEqual(w.ack(1), { do: 'done' });
});

test('with an OACK: nothing but the OACK until ACK 0', () => {
  const w = new Window(5000, 1000, 4, true, 5);
  assert.deepEqual(w.start(), send(0));
  assert.deepEqual(w.ack(1), { do: 'ignore', why: 'unexpected' });
  assert.deepEqual(w.timeout(), send(0));
  assert.deepEqual(w.ack(0), send(1, 2, 3, 4));
  assert.deepEqual(w.ack(4), send(5, 6));
  assert.deepEqual(w.ack(6), { do: 'done' });
});

test('ACK 0 without an OACK is a duplicate and changes nothing', () => {
  const w = new Window(5000, 512, 1, false, 5);
  w.start();
  assert.deepEqual(w.ack(0), { do: 'ignore', why: 'duplicate' });
  assert.deepEqual(w.ack(1), send(2));
});

test('duplicate ACKs never cause a resend (Sorcerer\'s Apprentice); only a timeout does', () => {
  const w = new Window(100_000, 512, 1, false, 5);
  w.start();
  assert.deepEqual(w.ack(1), send(2));
  for (let i = 0; i < 100; i++) assert.deepEqual(w.ack(1), { do: 'ignore', why: 'duplicate' });
  assert.deepEqual(w.timeout(), send(2));
});

test('an ACK inside a window restarts the window after it (RFC 7440)', () => {
  const w = new Window(100_000, 512, 8, true, 5);
  w.start();
  assert.deepEqual(w.ack(0), send(1, 2, 3, 4, 5, 6, 7, 8));
  assert.deepEqual(w.ack(3), send(4, 5, 6, 7, 8, 9, 10, 11));
  assert.deepEqual(w.ack(3), { do: 'ignore', why: 'duplicate' });
  assert.deepEqual(w.ack(12), { do: 'ignore', why: 'unexpected' });
  assert.deepEqual(w.timeout(), send(4, 5, 6, 7, 8, 9, 10, 11));
});

test('retransmissions are bounded and reset by progress', () => {
  const w = new Window(100_000, 512, 1, false, 2);
  w.start();
  assert.equal(w.timeout().do, 'send');
  assert.equal(w.timeout().do, 'send');
  assert.deepEqual(w.timeout(), { do: 'give-up' });
  const v = new Window(100_000, 512, 1, false, 1);
  v.start();
  assert.equal(v.timeout().do, 'send');
  assert.deepEqual(v.ack(1), send(2));
  assert.equal(v.timeout().do, 'send');
  assert.deepEqual(v.timeout(), { do: 'give-up' });
});

test('block numbers wrap 65535 -> 0 and keep counting absolutely', () => {
  const blocks = 70_000;
  const w = new Window(blocks * 8 + 3, 8, 1, false, 5);
  assert.deepEqual(w.start(), send(1));
  for (let b = 1; b < blocks; b++) assert.deepEqual(w.ack(b & 0xffff), send(b + 1));
  assert.deepEqual(w.range(65536), { offset: 65535 * 8, length: 8 });
  assert.deepEqual(w.ack(blocks & 0xffff), send(blocks + 1));
  assert.deepEqual(w.ack((blocks + 1) & 0xffff), { do: 'done' });
});

test('windows straddle the wrap', () => {
  const w = new Window(70_000 * 8, 8, 4, true, 5);
  w.start();
  let s = w.ack(0);
  while (s.do === 'send' && s.to < 65534) s = w.ack(s.to & 0xffff);
  assert.deepEqual(s, send(65533, 65534, 65535, 65536));
  assert.deepEqual(w.ack(0), send(65537, 65538, 65539, 65540));
});
