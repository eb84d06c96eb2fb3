// The payload that stands in for Talos, proved on its own: QEMU boots the kernel + initramfs directly (no firmware
// netboot) in the lab, against lab/peer.ts in the heph namespace. Shows that it fetches its config with retries,
// installs it to its disk, speaks gRPC events that protoc decodes and kernel-log JSON lines, then reboots.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HEPH_IP, identity, Lab, labUnavailable, PEER_PORTS } from './lab/lab.ts';
import { decodeEventRequest, ensurePayload, readInstalled, type Payload } from './lab/payload.ts';
import { startVm } from './lab/vm.ts';
import { eventually } from '../helpers/wait.ts';

const skip = labUnavailable();
const TALOS_CONFIG = `version: v1alpha1
debug: false
persist: true
machine:
  type: worker
  token: abcdef.0123456789abcdef
  install:
    disk: /dev/vda
cluster:
  controlPlane:
    endpoint: https://${HEPH_IP}:6443
  clusterName: e2e-payload
`;

let lab: Lab;
let payload: Payload;

before(async () => {
  if (skip) return;
  payload = ensurePayload();
  lab = await Lab.create();
});
after(async () => {
  if (!skip) await lab.destroy({ keepDir: process.env.E2E_KEEP === '1' });
});

test('payload boots under TCG, fetches and installs its config, reports events and kernel logs, reboots', { skip: skip ?? false, timeout: 240_000 }, async () => {
  const configFile = join(lab.dir, 'config.yaml');
  writeFileSync(configFile, TALOS_CONFIG);
  const seen: Record<string, unknown>[] = [];
  const peer = lab.spawnIn(lab.heph, process.execPath, ['--import', 'tsx', fileURLToPath(new URL('lab/peer.ts', import.meta.url)), HEPH_IP, configFile], 'peer.log');
  let buf = '';
  peer.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      seen.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  await eventually(() => (seen.some((e) => e.kind === 'ready') ? true : undefined), 'peer ready', 30_000, 100);

  const m = identity(1);
  const append = [
    'console=ttyS0',
    `talos.config=http://${HEPH_IP}:${PEER_PORTS.http}/config`,
    `talos.events.sink=${HEPH_IP}:${PEER_PORTS.grpc}`,
    `talos.logging.kernel=tcp://${HEPH_IP}:${PEER_PORTS.kernelLog}/`,
  ].join(' ');
  const vm = startVm(lab, { name: 'direct', machine: m, path: 'direct', noReboot: true, kernel: { kernel: payload.kernel, initrd: payload.initrd, append } });
  const fetched = await vm.waitForSerial(/heph-payload: config fetched bytes=(\d+) sha256=([0-9a-f]{64}) attempts=(\d+)/, 150_000);
  await vm.waitForSerial(/heph-payload: rebooting/, 60_000);
  if (vm.proc.exitCode === null) await once(vm.proc, 'exit');

  // Fetched with a retry after the 503, from the address the site DHCP server leased to this MAC.
  assert.equal(Number(fetched[1]), Buffer.byteLength(TALOS_CONFIG));
  assert.equal(fetched[3], '2');
  assert.match(vm.serial(), new RegExp(`heph-payload: address ${m.ip.replace(/\./g, '\\.')}/24 mac ${m.mac}`));
  const gets = seen.filter((e) => e.kind === 'http');
  assert.deepEqual(gets.map((e) => [e.url, e.ip, e.status]), [['/config', m.ip, 503], ['/config', m.ip, 200]]);

  // Installed: the disk holds exactly the served bytes.
  const installed = readInstalled(vm.diskFile);
  assert.ok(installed, 'nothing installed on the disk');
  assert.equal(installed.config.toString(), TALOS_CONFIG);
  assert.equal(installed.sha256, fetched[2]);

  // Events: every body decodes with protoc as an events.EventRequest carrying a machine.* Any and a 20-char id.
  const events = seen.filter((e) => e.kind === 'event');
  assert.ok(events.every((e) => String(e.peer).startsWith(`${m.ip}:`)), 'events came from the machine');
  const decoded = events.map((e) => decodeEventRequest(Buffer.from(String(e.body), 'base64')));
  const ids = decoded.map((d) => d.id);
  assert.ok(ids.every((id) => /^[0-9a-v]{20}$/.test(id)), `every event has an xid-like id: ${ids.join(' ')}`);
  assert.equal(new Set(ids).size, ids.length, 'event ids are unique');
  const summary = decoded.map((d) => {
    const name = /(?:sequence|phase|task): "(\w+)"/.exec(d.text)?.[1] ?? /stage: (\w+)/.exec(d.text)?.[1] ?? /cmd: (\d+)/.exec(d.text)?.[1];
    // proto3 leaves zero values out: NOOP for sequences, START for phases and tasks.
    const zero: Record<string, string> = { 'machine.SequenceEvent': 'NOOP', 'machine.PhaseEvent': 'START', 'machine.TaskEvent': 'START' };
    const action = /action: (\w+)/.exec(d.text)?.[1] ?? zero[d.type] ?? '';
    return `${d.type.replace('machine.', '')} ${name} ${action}`.trim();
  });
  assert.deepEqual(summary, [
    'SequenceEvent initialize START',
    'MachineStatusEvent BOOTING',
    'TaskEvent loadConfig START',
    'TaskEvent loadConfig STOP',
    'SequenceEvent initialize STOP',
    'SequenceEvent install START',
    'PhaseEvent install START',
    'MachineStatusEvent INSTALLING',
    'PhaseEvent install STOP',
    'PhaseEvent reboot START',
    'MachineStatusEvent REBOOTING',
    'SequenceEvent install STOP',
    'SequenceEvent install NOOP',
    'RestartEvent 19088743',
  ]);
  assert.match(decoded[12]!.text, /message: "sequence failed: unix\.Reboot\(1234567\)"/);

  // Kernel log: JSON lines with Talos's fields, including the payload's own steps.
  const klog = seen.filter((e) => e.kind === 'klog').map((e) => JSON.parse(String(e.line)) as Record<string, unknown>);
  assert.ok(klog.length > 50, `kernel log lines: ${klog.length}`);
  for (const l of klog) {
    assert.equal(typeof l.clock, 'number');
    assert.equal(typeof l.seq, 'number');
    assert.match(String(l.facility), /^(kern|user|daemon|syslog|local\d)$/);
    assert.match(String(l.priority), /^(emerg|alert|crit|err|warning|notice|info|debug)$/);
    assert.match(String(l['talos-level']), /^(error|warn|info|debug)$/);
    assert.ok(!Number.isNaN(Date.parse(String(l['talos-time']))));
  }
  assert.ok(klog.some((l) => l.facility === 'kern' && /^Linux version /.test(String(l.msg))));
  assert.ok(klog.some((l) => l.facility === 'user' && String(l.msg).includes('heph-payload: config fetched')));
});
