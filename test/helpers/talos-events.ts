// Talos sink traffic built by independent tools: protobuf bytes from Debian's `protoc --encode` (text format in,
// wire format out), gRPC framing by hand. Nothing here uses heph's decoder.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './heph.ts';

const PROTO = join(REPO, 'proto');
const FILES = ['events/events.proto', 'machine/machine.proto'];

/** Protobuf bytes of `message` (e.g. machine.SequenceEvent) written in protobuf text format. */
export function protocEncode(message: string, text: string): Buffer {
  return execFileSync('protoc', [`-I${PROTO}`, '-I/usr/include', `--encode=${message}`, ...FILES], { input: text });
}

/** One step of a Talos run: the payload message name (without package) and its text-format body. */
export type Step = [type: string, text: string];

/** An events.EventRequest packing the step as Any (type.googleapis.com/machine.<type>), encoded by protoc. */
export function eventRequest([type, text]: Step, id: string, actorId = ''): Buffer {
  return protocEncode('events.EventRequest', `data { [type.googleapis.com/machine.${type}] { ${text} } } id: "${id}" actor_id: "${actorId}"`);
}

/** The gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, bytes. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** rs/xid-shaped ids (20 chars of base32hex): unique per run, sortable in order. */
export function xids(n: number, run = Math.floor(Math.random() * 1e6)): string[] {
  return Array.from({ length: n }, (_, i) => `c${run.toString(32).padStart(6, '0')}${i.toString(32).padStart(13, '0')}`.slice(0, 20));
}

const seq = (name: string, action: string): Step => ['SequenceEvent', `sequence: "${name}" action: ${action}`];
const phase = (name: string, action: string): Step => ['PhaseEvent', `phase: "${name}" action: ${action}`];
const task = (name: string, action: string): Step => ['TaskEvent', `task: "${name}" action: ${action}`];
const service = (name: string, action: string): Step => ['ServiceStateEvent', `service: "${name}" action: ${action} message: "Health check successful" health { healthy: true }`];
const status = (stage: string, ready: boolean, unmet: [string, string][] = []): Step => [
  'MachineStatusEvent',
  `stage: ${stage} status { ready: ${ready} ${unmet.map(([n, r]) => `unmet_conditions { name: "${n}" reason: "${r}" }`).join(' ')} }`,
];

export const REBOOT_MESSAGE = 'error running phase 8 in install sequence: task 1/1: failed, unix.Reboot(45584543)';

/**
 * A first PXE boot that installs, in the order Talos publishes (protocols.md §2.5): initialize, the install
 * sequence ending in its kexec "failure", then (after kexec, a fresh event buffer) initialize, boot, services,
 * machine status up to ready with nodeReady. Composed from the documented sequencer phases, not recorded.
 */
export const INSTALL_RUN: Step[] = [
  seq('initialize', 'START'),
  status('BOOTING', false, [['time', 'time is not in sync'], ['network', 'address']]),
  phase('systemRequirements', 'START'),
  task('setupSystemDirectory', 'START'),
  task('setupSystemDirectory', 'STOP'),
  phase('systemRequirements', 'STOP'),
  phase('config', 'START'),
  task('loadConfig', 'START'),
  task('loadConfig', 'STOP'),
  phase('config', 'STOP'),
  seq('initialize', 'STOP'),
  seq('install', 'START'),
  phase('env', 'START'),
  phase('env', 'STOP'),
  phase('install', 'START'),
  status('INSTALLING', false),
  task('install', 'START'),
  task('install', 'STOP'),
  phase('install', 'STOP'),
  phase('meta', 'START'),
  phase('meta', 'STOP'),
  phase('stopEverything', 'START'),
  phase('stopEverything', 'STOP'),
  phase('kexec', 'START'),
  status('REBOOTING', false),
  seq('install', 'STOP'),
  ['SequenceEvent', `sequence: "install" action: NOOP error { code: FATAL message: "${REBOOT_MESSAGE}" }`],
  ['RestartEvent', 'cmd: 1163412803'],
];

export const BOOT_RUN: Step[] = [
  ['AddressEvent', 'hostname: "talos-w1" addresses: "127.0.0.2/8"'],
  seq('initialize', 'START'),
  seq('initialize', 'STOP'),
  seq('install', 'START'),
  seq('install', 'STOP'),
  seq('boot', 'START'),
  status('BOOTING', false, [['services', 'waiting for kubelet']]),
  phase('startEverything', 'START'),
  service('apid', 'RUNNING'),
  service('kubelet', 'RUNNING'),
  phase('startEverything', 'STOP'),
  seq('boot', 'STOP'),
  status('RUNNING', false, [['nodeReady', 'node \\"talos-w1\\" status is not available yet']]),
  status('RUNNING', true),
];

/** The lifecycle states the two runs should drive a machine through, in order. */
export const EXPECTED_STATES = ['installing', 'installed', 'running', 'ready'];
