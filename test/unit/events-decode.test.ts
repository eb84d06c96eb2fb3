import assert from 'node:assert/strict';
import { test } from 'node:test';
import { transition } from '../../src/boot/lifecycle.ts';
import { EventDecoder } from '../../src/events/decode.ts';
import { summarize, type TalosEvent } from '../../src/events/model.ts';
import { peerIp } from '../../src/events/sink.ts';
import type { MachineState } from '../../src/inventory/machines.ts';
import { BOOT_RUN, EXPECTED_STATES, eventRequest, INSTALL_RUN, protocEncode, REBOOT_MESSAGE } from '../helpers/talos-events.ts';

const decoder = new EventDecoder();
const decode = (bytes: Buffer): { id: string; actorId: string; typeName: string; event: TalosEvent | undefined } => {
  const raw = decoder.decodeRequest(bytes);
  const d = decoder.decodePayload(raw);
  return { id: raw.id, actorId: raw.actorId, typeName: raw.typeName, event: d.known ? d.event : undefined };
};

test('decode: every payload type Talos publishes, encoded by protoc', () => {
  const cases: [string, string, TalosEvent][] = [
    ['SequenceEvent', 'sequence: "boot" action: START', { type: 'sequence', sequence: 'boot', action: 'START' }],
    [
      'SequenceEvent',
      `sequence: "install" action: NOOP error { message: "${REBOOT_MESSAGE}" }`,
      // FATAL is the zero value: a present error without a code still decodes as FATAL.
      { type: 'sequence', sequence: 'install', action: 'NOOP', error: { code: 'FATAL', message: REBOOT_MESSAGE } },
    ],
    ['SequenceEvent', 'sequence: "reset" action: NOOP error { code: LOCKED message: "locked" }', { type: 'sequence', sequence: 'reset', action: 'NOOP', error: { code: 'LOCKED', message: 'locked' } }],
    ['PhaseEvent', 'phase: "install"', { type: 'phase', phase: 'install', action: 'START' }],
    ['PhaseEvent', 'phase: "install" action: STOP', { type: 'phase', phase: 'install', action: 'STOP' }],
    ['TaskEvent', 'task: "loadConfig" action: STOP', { type: 'task', task: 'loadConfig', action: 'STOP' }],
    [
      'ServiceStateEvent',
      'service: "etcd" action: FAILED message: "exit 1" health { unknown: false healthy: false last_message: "x" last_change { seconds: 1700000000 } }',
      { type: 'service', service: 'etcd', action: 'FAILED', message: 'exit 1', healthy: false },
    ],
    ['ServiceStateEvent', 'service: "apid" action: RUNNING health { unknown: true }', { type: 'service', service: 'apid', action: 'RUNNING', message: '', healthy: null }],
    [
      'MachineStatusEvent',
      'stage: RUNNING status { ready: false unmet_conditions { name: "nodeReady" reason: "node not ready" } unmet_conditions { name: "time" } }',
      { type: 'status', stage: 'RUNNING', ready: false, unmet: [{ name: 'nodeReady', reason: 'node not ready' }, { name: 'time', reason: '' }] },
    ],
    ['MachineStatusEvent', 'stage: RUNNING status { ready: true }', { type: 'status', stage: 'RUNNING', ready: true, unmet: [] }],
    ['MachineStatusEvent', '', { type: 'status', stage: 'UNKNOWN', ready: false, unmet: [] }],
    ['ConfigLoadErrorEvent', 'error: "failed to load config"', { type: 'configLoadError', error: 'failed to load config' }],
    ['AddressEvent', 'hostname: "w1" addresses: "10.5.0.2/24" addresses: "fd00::2/64"', { type: 'address', hostname: 'w1', addresses: ['10.5.0.2/24', 'fd00::2/64'] }],
    ['RestartEvent', 'cmd: 1163412803', { type: 'restart', cmd: 0x45584543 }],
  ];
  for (const [type, text, want] of cases) {
    const got = decode(eventRequest([type, text], 'cv1e3bmv0qd1u8sel3n0', 'actor-7'));
    assert.equal(got.id, 'cv1e3bmv0qd1u8sel3n0');
    assert.equal(got.actorId, 'actor-7');
    assert.equal(got.typeName, `machine.${type}`);
    assert.deepEqual(got.event, want, `${type} ${text}`);
    assert.ok(summarize(want).length > 0);
  }
});

test('decode: an enum number heph does not know is kept as its digits', () => {
  const value = protocEncode('machine.PhaseEvent', 'phase: "x"');
  const bytes = Buffer.concat([value, Buffer.from([0x10, 0x07])]); // field 2 (action) = 7
  const d = decoder.decodePayload({ typeName: 'machine.PhaseEvent', value: bytes });
  assert.deepEqual(d, { known: true, event: { type: 'phase', phase: 'x', action: '7' } });
});

test('decode: unknown payload types are reported as such, not thrown', () => {
  const bytes = protocEncode('events.EventRequest', 'data { type_url: "type.googleapis.com/machine.ConfigValidationErrorEvent" value: "\\n\\x03bad" } id: "a"');
  const raw = decoder.decodeRequest(bytes);
  assert.equal(raw.typeName, 'machine.ConfigValidationErrorEvent');
  assert.deepEqual(decoder.decodePayload(raw), { known: false });
  // The Any prefix is whatever precedes the last slash (Talos's own API uses talos/runtime/).
  assert.equal(decoder.decodeRequest(protocEncode('events.EventRequest', 'data { type_url: "talos/runtime/machine.PhaseEvent" } id: "b"')).typeName, 'machine.PhaseEvent');
  // No data at all.
  const empty = decoder.decodeRequest(protocEncode('events.EventRequest', 'id: "c"'));
  assert.equal(empty.typeName, '');
  assert.deepEqual(decoder.decodePayload(empty), { known: false });
});

test('decode: malformed bytes throw for the caller to count', () => {
  assert.throws(() => decoder.decodeRequest(Buffer.from([0x0a, 0xff, 0xff])));
  assert.throws(() => decoder.decodeRequest(Buffer.from([0x12, 0x05, 0x61])));
  assert.throws(() => decoder.decodePayload({ typeName: 'machine.SequenceEvent', value: Buffer.from([0x0a, 0x09, 0x62]) }));
});

test('decode + lifecycle: a PXE install run then the installed boot reach installing, installed, running, ready', () => {
  let state: MachineState = 'config-served';
  const trail: string[] = [];
  for (const [i, step] of [...INSTALL_RUN, ...BOOT_RUN].entries()) {
    const { event } = decode(eventRequest(step, `id${i}`));
    assert.ok(event, `step ${i} decodes`);
    const t = transition(state, event);
    if (t) {
      state = t.state;
      trail.push(t.state);
    }
  }
  assert.deepEqual(trail, EXPECTED_STATES);
});

test('peerIp: grpc-js peer strings to bare IPs', () => {
  assert.equal(peerIp('127.0.0.2:51234'), '127.0.0.2');
  assert.equal(peerIp('::ffff:10.5.0.2:40000'), '10.5.0.2');
  assert.equal(peerIp('[fd00::2]:40000'), 'fd00::2');
  assert.equal(peerIp('fd00::2:40000'), 'fd00::2');
  assert.equal(peerIp('ipv4:10.0.0.1:1'), '10.0.0.1');
});
