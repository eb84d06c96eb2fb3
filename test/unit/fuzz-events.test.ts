// Fuzz the Talos feedback parsers on main: the gRPC event decoder (EventRequest envelope and every known payload
// type) and the kernel-log JSON line parser and line splitter. Bar: a bad input is an Error the caller turns into
// INVALID_ARGUMENT or a counted drop, never anything else thrown, never a hang; whatever parses has the promised
// shape; the splitter never yields a line over its bound.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { EventDecoder } from '../../src/events/decode.ts';
import { LineSplitter, parseKmsgLine } from '../../src/events/kmsg.ts';
import { eventRequest, INSTALL_RUN, BOOT_RUN, protocEncode } from '../helpers/talos-events.ts';
import { params } from './fuzz-budget.ts';

const decoder = new EventDecoder();

/** Runs fn; anything thrown must be an Error (the sink maps those to INVALID_ARGUMENT). */
function errorsOnly<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    return undefined;
  }
}

function checkRequest(bytes: Uint8Array): void {
  const raw = errorsOnly(() => decoder.decodeRequest(bytes));
  if (!raw) return;
  assert.equal(typeof raw.id, 'string');
  assert.equal(typeof raw.actorId, 'string');
  assert.equal(typeof raw.typeName, 'string');
  // protobufjs leaves an absent bytes field as its default, an empty plain array (found by this fuzz: [8, 0]).
  const value: unknown = raw.value;
  assert.ok(value instanceof Uint8Array || (Array.isArray(value) && value.length === 0));
  const d = errorsOnly(() => decoder.decodePayload(raw));
  if (d?.known) assert.equal(typeof d.event.type, 'string');
}

// Real requests (protoc-encoded, independent of heph's decoder) for every payload type the helper knows.
const seeds = [...INSTALL_RUN, ...BOOT_RUN].map((s, i) => eventRequest(s, `c${String(i).padStart(19, '0')}`));
const types = [...new Set([...INSTALL_RUN, ...BOOT_RUN].map(([t]) => t))];

const mutated = fc
  .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(), fc.uint8Array({ maxLength: 40 }))
  .map(([seed, flips, cut, tail]) => {
    const b = Buffer.from(seed);
    for (const [at, v] of flips) b[at % b.length] = v;
    return new Uint8Array(Buffer.concat([b.subarray(0, cut % (b.length + 1)), Buffer.from(tail)]));
  });

it('fuzz: event decoder on random bytes, mutated real requests, and random payloads under known type URLs', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), checkRequest), params(21, 20_000));
  fc.assert(fc.property(mutated, checkRequest), params(22, 20_000));
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 300 }), (typeName, value) => {
      const d = errorsOnly(() => decoder.decodePayload({ typeName: `machine.${typeName}`, value }));
      if (d) assert.equal(d.known, true);
    }),
    params(23, 20_000),
  );
});

it('the decoder reads every protoc-encoded seed (the fuzz seeds are real requests)', () => {
  for (const s of seeds) assert.equal(decoder.decodePayload(decoder.decodeRequest(new Uint8Array(s))).known, true);
  assert.ok(protocEncode('events.EventRequest', 'id: "x"').length > 0);
});

it('regression (fuzz [8, 0]): a payload whose fields are all defaults, sent as an empty value, still decodes', () => {
  const raw = decoder.decodeRequest(new Uint8Array(protocEncode('events.EventRequest', 'data { [type.googleapis.com/machine.SequenceEvent] { } } id: "x"')));
  assert.equal(raw.value.length, 0);
  assert.deepEqual(decoder.decodePayload(raw), { known: true, event: { type: 'sequence', sequence: '', action: 'NOOP' } });
  assert.deepEqual(decoder.decodeRequest(new Uint8Array([8, 0])), { typeName: '', value: [], id: '', actorId: '' });
});

const jsonish = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.record({ msg: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), seq: fc.oneof(fc.integer(), fc.double(), fc.string()), clock: fc.anything(), facility: fc.anything(), priority: fc.anything(), 'talos-time': fc.anything(), 'talos-service': fc.anything() }, { requiredKeys: [] }).map((o) => {
    try {
      return JSON.stringify(o);
    } catch {
      return '{}';
    }
  }),
);

it('fuzz: kernel-log lines parse to the documented shape or a named error', () => {
  fc.assert(
    fc.property(jsonish, (text) => {
      const r = parseKmsgLine(text);
      if ('error' in r) {
        assert.ok(['not_json', 'not_object', 'no_msg'].includes(r.error));
        return;
      }
      assert.equal(typeof r.msg, 'string');
      for (const k of ['seq', 'clock'] as const) assert.ok(r[k] === null || Number.isSafeInteger(r[k]));
      for (const k of ['facility', 'priority', 'talosTime', 'service'] as const) assert.ok(r[k] === null || typeof r[k] === 'string');
    }),
    params(24, 30_000),
  );
});

it('fuzz: the line splitter yields exactly the bounded lines of any chunking', () => {
  const MAX = 64;
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string({ maxLength: 100 }), fc.constant('\n'), fc.constant('\r\n')), { maxLength: 40 }), fc.array(fc.nat({ max: 50 }), { maxLength: 20 }), (parts, cuts) => {
      const stream = Buffer.from(parts.join(''));
      const lines: string[] = [];
      let tooLong = 0;
      const s = new LineSplitter((l) => lines.push(l), () => tooLong++, MAX);
      let at = 0;
      for (const c of cuts) {
        s.push(stream.subarray(at, at + c));
        at = Math.min(stream.length, at + c);
      }
      s.push(stream.subarray(at));
      for (const l of lines) assert.ok(Buffer.byteLength(l) <= MAX);
      // The same stream in one piece gives the same lines: chunk boundaries never change what is read.
      const whole: string[] = [];
      new LineSplitter((l) => whole.push(l), () => {}, MAX).push(stream);
      assert.deepEqual(lines, whole);
      assert.ok(s.pending <= MAX);
    }),
    params(25, 20_000),
  );
});
