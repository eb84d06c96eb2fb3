// The pure parts of the e2e lab: machine identities, QEMU command lines per boot path (the firmware pitfalls of
// netboot-lab.md), reading what the payload installed, and splitting an EventRequest.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { tempDir } from '../helpers/heph.ts';
import { identity } from '../e2e/lab/lab.ts';
import { decodeEventRequest, readInstalled } from '../e2e/lab/payload.ts';
import { qemuArgs, type BootPath } from '../e2e/lab/vm.ts';

test('identities are predictable and distinct', () => {
  assert.deepEqual(identity(3), { index: 3, mac: '52:54:00:e2:e0:03', ip: '192.0.2.103', uuid: '7e57b001-0000-4000-8000-000000000003', tap: 'tap3' });
  assert.equal(identity(42).mac, '52:54:00:e2:e0:2a');
  assert.throws(() => identity(0));
  assert.throws(() => identity(100));
});

test('QEMU arguments carry each path\'s firmware setup', () => {
  const files = { serial: '/l/s', disk: '/l/d', vars: '/l/v' };
  const args = (path: BootPath): string => qemuArgs({ name: 'x', machine: identity(1), path, kernel: { kernel: 'k', initrd: 'i', append: 'a b' } }, files).join(' ');
  for (const p of ['uefi-pxe', 'uefi-http', 'bios-ipxe', 'direct'] as const) {
    const a = args(p);
    assert.match(a, /-accel tcg/);
    assert.match(a, /-nodefaults/);
    assert.match(a, /-uuid 7e57b001-0000-4000-8000-000000000001/);
    assert.match(a, /-netdev tap,id=n0,ifname=tap1,script=no,downscript=no/);
    assert.doesNotMatch(a, /user|slirp/);
  }
  assert.match(args('uefi-pxe'), /OVMF_CODE_4M\.fd.*file=\/l\/v.*virtio-net-pci,netdev=n0,mac=52:54:00:e2:e0:01,bootindex=1,romfile=(\s|$)/);
  assert.doesNotMatch(args('uefi-pxe'), /IPv4PXESupport/);
  assert.match(args('uefi-http'), /opt\/org\.tianocore\/IPv4PXESupport,string=no.*IPv6PXESupport,string=no/);
  assert.match(args('bios-ipxe'), /romfile=\/usr\/lib\/ipxe\/qemu\/pxe-virtio\.rom,disable-legacy=on/);
  assert.match(args('bios-ipxe'), /-machine graphics=off/);
  assert.doesNotMatch(args('bios-ipxe'), /pflash/);
  assert.match(args('direct'), /-kernel k -initrd i -append a b/);
  assert.throws(() => qemuArgs({ name: 'x', machine: identity(1), path: 'direct' }, files));
});

test('readInstalled returns the config after the header, and refuses a body that does not match it', () => {
  const dir = tempDir();
  try {
    const config = 'version: v1alpha1\nmachine: {}\n';
    const sum = createHash('sha256').update(config).digest('hex');
    const disk = join(dir.path, 'disk');
    writeFileSync(disk, Buffer.concat([Buffer.from(`HEPH-PAYLOAD-INSTALL ${config.length} ${sum}\n${config}`), Buffer.alloc(4096)]));
    assert.deepEqual(readInstalled(disk), { config: Buffer.from(config), sha256: sum });
    writeFileSync(disk, `HEPH-PAYLOAD-INSTALL ${config.length} ${sum}\n${config.replace('v1', 'v2')}`);
    assert.throws(() => readInstalled(disk), /does not match/);
    writeFileSync(disk, Buffer.alloc(8192));
    assert.equal(readInstalled(disk), undefined);
  } finally {
    dir.remove();
  }
});

test('an EventRequest encoded by protoc is split and decoded back', { skip: hasProtoc() ? false : 'protoc missing (protobuf-compiler)' }, () => {
  const dir = new URL('../e2e/payload/', import.meta.url).pathname;
  const text = 'data { [type.googleapis.com/machine.PhaseEvent] { phase: "install" action: STOP } } id: "0123456789abcdefghij" actor_id: "x"';
  const bytes = execFileSync('protoc', [`-I${dir}`, '-I/usr/include', '--encode=events.EventRequest', 'talos-events.proto', 'talos-machine.proto'], { cwd: dir, input: text });
  const d = decodeEventRequest(bytes);
  assert.equal(d.id, '0123456789abcdefghij');
  assert.equal(d.type, 'machine.PhaseEvent');
  assert.match(d.text, /phase: "install"\naction: STOP/);
  assert.throws(() => decodeEventRequest(Buffer.from([0x0a, 0x05, 0x01])), /truncated/);
});

function hasProtoc(): boolean {
  try {
    execFileSync('protoc', ['--version']);
    return true;
  } catch {
    return false;
  }
}
