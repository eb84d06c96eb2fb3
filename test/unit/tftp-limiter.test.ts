import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplyLimiter } from '../../src/tftp/limiter.ts';

test('a source gets its burst, then one reply per refill interval; other sources are not held back', () => {
  const l = new ReplyLimiter(3, 2);
  assert.deepEqual([1, 2, 3, 4].map(() => l.take('a', 0)), [true, true, true, false]);
  assert.equal(l.take('b', 0), true, 'another source has its own bucket');
  assert.equal(l.take('a', 400), false, '0.8 of a token after 400 ms at 2/s');
  assert.equal(l.take('a', 500), true, 'one token after 500 ms');
  assert.equal(l.take('a', 500), false);
  assert.deepEqual([1, 2, 3, 4].map(() => l.take('a', 60_000)), [true, true, true, false], 'refills to the burst, never beyond');
});

test('memory stays bounded: idle sources are forgotten first, and a flood of new sources cannot grow the table', () => {
  const l = new ReplyLimiter(2, 1, 3);
  l.take('busy', 0);
  l.take('busy', 0);
  l.take('idle', 0);
  l.take('x', 0);
  // Three sources known; a fourth arrives 10 s later: the refilled ones are forgotten, and the new one is answered.
  assert.equal(l.take('new', 10_000), true);
  assert.equal(l.take('busy', 10_000), true, 'a forgotten source starts again with a full burst');
  for (let i = 0; i < 100; i++) assert.equal(l.take(`flood${i}`, 10_000), true);
});
