import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LineSplitter, parseKmsgLine } from '../../src/events/kmsg.ts';

// The example from Talos's sender (protocols.md §2.6).
const TALOS_LINE = '{"clock":6252819,"facility":"user","msg":"[talos] task startAllServices (1/1): waiting for 6 services\\n","priority":"warning","seq":711,"talos-level":"warn","talos-time":"2021-11-26T16:53:21.3258698Z"}';

test('kmsg: a Talos kernel line parses with every field', () => {
  assert.deepEqual(parseKmsgLine(TALOS_LINE), {
    msg: '[talos] task startAllServices (1/1): waiting for 6 services',
    seq: 711,
    clock: 6252819,
    facility: 'user',
    priority: 'warning',
    talosTime: '2021-11-26T16:53:21.3258698Z',
    service: null,
  });
  const svc = parseKmsgLine('{"msg":"started","talos-level":"info","talos-service":"kubelet","talos-time":"2026-01-01T00:00:00Z"}');
  assert.ok(!('error' in svc));
  assert.equal(svc.service, 'kubelet');
  assert.equal(svc.seq, null);
});

test('kmsg: malformed lines name their reason', () => {
  assert.deepEqual(parseKmsgLine('{"msg":'), { error: 'not_json' });
  assert.deepEqual(parseKmsgLine('[1,2]'), { error: 'not_object' });
  assert.deepEqual(parseKmsgLine('null'), { error: 'not_object' });
  assert.deepEqual(parseKmsgLine('"msg"'), { error: 'not_object' });
  assert.deepEqual(parseKmsgLine('{"clock":1}'), { error: 'no_msg' });
  assert.deepEqual(parseKmsgLine('{"msg":5}'), { error: 'no_msg' });
  // Mistyped optional fields are nulled, not trusted.
  const l = parseKmsgLine('{"msg":"x","seq":"711","clock":1.5,"facility":3}');
  assert.ok(!('error' in l));
  assert.deepEqual([l.seq, l.clock, l.facility], [null, null, null]);
});

function split(chunks: Buffer[], max?: number): { lines: string[]; tooLong: number; pending: number } {
  const lines: string[] = [];
  let tooLong = 0;
  const s = new LineSplitter((l) => lines.push(l), () => tooLong++, max);
  for (const c of chunks) s.push(c);
  return { lines, tooLong, pending: s.pending };
}

test('kmsg: lines split across any chunking come out whole (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\n') && !s.includes('\r') && s.trim() !== ''), { maxLength: 20 }), fc.array(fc.nat(50), { maxLength: 30 }), (lines, cuts) => {
      const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''));
      const chunks: Buffer[] = [];
      let at = 0;
      for (const c of cuts) {
        chunks.push(bytes.subarray(at, Math.min(bytes.length, at + c)));
        at = Math.min(bytes.length, at + c);
      }
      chunks.push(bytes.subarray(at));
      const r = split(chunks);
      assert.deepEqual(r.lines, lines);
      assert.equal(r.tooLong, 0);
      assert.equal(r.pending, 0);
    }),
  );
});

test('kmsg: CRLF, blank lines and an unfinished tail', () => {
  const r = split([Buffer.from('a\r\n\n\r\nb\nunfinished')]);
  assert.deepEqual(r.lines, ['a', 'b']);
  assert.equal(r.pending, 'unfinished'.length);
});

test('kmsg: an over-long line is dropped once, up to its newline, and the stream goes on', () => {
  const long = 'x'.repeat(100);
  // Within one chunk, across chunks while buffered, and after the buffer overflowed mid-chunk.
  assert.deepEqual(split([Buffer.from(`ok1\n${long}\nok2\n`)], 50), { lines: ['ok1', 'ok2'], tooLong: 1, pending: 0 });
  const chunks = [Buffer.from('ok1\nxxxxxxxxxx'), ...Array.from({ length: 20 }, () => Buffer.from('x'.repeat(10))), Buffer.from('xx\nok2\n')];
  assert.deepEqual(split(chunks, 50), { lines: ['ok1', 'ok2'], tooLong: 1, pending: 0 });
  // Memory stays bounded while skipping.
  const s = new LineSplitter(() => {}, () => {}, 50);
  for (let i = 0; i < 1000; i++) s.push(Buffer.from('y'.repeat(1000)));
  assert.equal(s.pending, 0);
});
