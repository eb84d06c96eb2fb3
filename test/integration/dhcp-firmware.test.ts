// Real firmware against heph's proxy-DHCP in QEMU (netboot-lab.md paths P1, P2, P3): OVMF (EDK2) UEFI HTTP Boot,
// OVMF PXE (which needs the port-4011 exchange), and SeaBIOS with iPXE's option ROM.
//   lan: bridge br0 ── tap0 (QEMU) ── srv eth0 10.79.0.1/24 (heph) ── site eth0 10.79.0.2/24 (dnsmasq: the
//   site's ordinary DHCP server handing out addresses, no boot options)
// Pass: the firmware's HTTPClient DISCOVER gets heph's OFFER, the firmware downloads ipxe.efi from heph's HTTP
// server and runs it, and that iPXE's own DISCOVER is answered with the boot.ipxe script URL: every step is a
// real peer's decision about bytes heph produced.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { spawnHeph, tempDir, type HephProcess } from '../helpers/heph.ts';
import { canUseNetns, Netns, vethPair } from '../helpers/netns.ts';

const OVMF = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const ready = canUseNetns() && existsSync(OVMF) && existsSync('/usr/bin/qemu-system-x86_64');

let lan: Netns, srv: Netns, site: Netns;
let heph: HephProcess | undefined;
let dnsmasq: ChildProcess | undefined;
const dir = tempDir('heph-dhcp-fw-');

before(() => {
  if (!ready) return;
  lan = Netns.create('flan');
  srv = Netns.create('fsrv');
  site = Netns.create('fsite');
  lan.run('ip', ['link', 'add', 'br0', 'type', 'bridge']);
  lan.run('ip', ['link', 'set', 'br0', 'up']);
  vethPair(srv, 'eth0', lan, 'vsrv');
  vethPair(site, 'eth0', lan, 'vsite');
  lan.run('ip', ['tuntap', 'add', 'dev', 'tap0', 'mode', 'tap']);
  for (const l of ['vsrv', 'vsite', 'tap0']) {
    lan.run('ip', ['link', 'set', l, 'master', 'br0']);
    lan.run('ip', ['link', 'set', l, 'up']);
  }
  srv.addr('eth0', '10.79.0.1/24');
  site.addr('eth0', '10.79.0.2/24');
});

const qemus: ChildProcess[] = [];

/** Boots a VM on the bridge; resolves the serial log path. Each test uses its own SMBIOS UUID to find its lines. */
function boot(uuid: string, args: string[]): string {
  const serial = join(dir.path, `serial-${uuid}.log`);
  const vm = lan.spawn('qemu-system-x86_64', ['-accel', 'tcg', '-m', '256', '-nodefaults', '-display', 'none', '-serial', `file:${serial}`, '-uuid', uuid, ...args]);
  qemus.push(vm);
  return serial;
}

/** Each VM its own MAC too, so no cache (site DHCP lease, ARP, heph's inventory) carries over between tests. */
const macOf = (uuid: string) => `52:54:00:00:00:${uuid.slice(-2)}`;

function ovmf(uuid: string, extra: string[]): string {
  const vars = join(dir.path, `vars-${uuid}.fd`);
  copyFileSync(VARS, vars);
  return boot(uuid, ['-drive', `if=pflash,format=raw,readonly=on,file=${OVMF}`, '-drive', `if=pflash,format=raw,file=${vars}`, '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', `virtio-net-pci,netdev=n0,romfile=,mac=${macOf(uuid)}`, ...extra]);
}

async function started(): Promise<HephProcess> {
  if (!heph) {
    heph = await spawnHeph({ log: { level: 'debug' }, network: { interfaces: ['eth0'] }, http: { listen: '0.0.0.0', port: 8080 }, dhcp: { enabled: true } }, { netns: srv });
    dnsmasq = site.spawn('dnsmasq', ['--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--interface=eth0', '--bind-interfaces', '--dhcp-range=10.79.0.100,10.79.0.150,1h', `--dhcp-leasefile=${join(dir.path, 'leases')}`, `--pid-file=${join(dir.path, 'dnsmasq.pid')}`]);
  }
  return heph;
}

async function answered(h: HephProcess, serial: string, pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return h.waitForLog(pred, 240_000).catch((e: Error) => assert.fail(`${e.message}\nserial: ${existsSync(serial) ? readFileSync(serial, 'utf8').slice(-2000) : ''}`));
}

const OFFER = 'DISCOVER answered with a proxy OFFER';
const ACK = 'boot-server REQUEST answered with an ACK';

/** Waits for each VM to be gone: a dying QEMU still holds tap0, and the next test's QEMU would fail to open it. */
async function stopVms(): Promise<void> {
  await Promise.all(
    qemus.splice(0).map((vm) => {
      if (vm.exitCode !== null || vm.signalCode !== null) return undefined;
      const gone = new Promise((r) => vm.once('exit', r));
      vm.kill('SIGKILL');
      return gone;
    }),
  );
}

after(async () => {
  await stopVms();
  dnsmasq?.kill('SIGTERM');
  await heph?.stop();
  for (const ns of [lan, srv, site]) ns?.destroy();
  dir.remove();
});

it('OVMF UEFI HTTP Boot: HTTPClient OFFER → ipxe.efi over HTTP → iPXE asks again and gets boot.ipxe', { skip: !ready && 'needs root, network namespaces, QEMU and OVMF', timeout: 300_000 }, async () => {
  const h = await started();
  const uuid = '7e57b001-0000-4000-8000-000000000001';
  const serial = ovmf(uuid, ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no']);
  try {
    const http = await answered(h, serial, (l) => l.msg === OFFER && l.uuid === uuid && l.firmware === 'http');
    assert.equal(http.file, 'http://10.79.0.1:8080/ipxe.efi');
    const ipxe = await answered(h, serial, (l) => l.msg === OFFER && l.uuid === uuid && l.firmware === 'ipxe');
    assert.equal(ipxe.file, 'http://10.79.0.1:8080/boot.ipxe');
  } finally {
    await stopVms();
  }
});

it('OVMF PXE: OFFER, then the boot-server REQUEST to 4011 from the firmware gets the ACK with ipxe.efi', { skip: !ready && 'needs root, network namespaces, QEMU and OVMF', timeout: 300_000 }, async () => {
  const h = await started();
  const uuid = '7e57b001-0000-4000-8000-000000000002';
  const serial = ovmf(uuid, ['-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no']);
  try {
    const offer = await answered(h, serial, (l) => l.msg === OFFER && l.uuid === uuid && l.firmware === 'pxe');
    assert.equal(offer.file, 'ipxe.efi');
    const ack = await answered(h, serial, (l) => l.msg === ACK && l.uuid === uuid);
    assert.equal(ack.file, 'ipxe.efi');
    assert.match(String(ack.ip), /^10\.79\.0\.(1[0-4]\d|150)$/, 'the firmware asked from the address the site DHCP server gave it');
  } finally {
    await stopVms();
  }
});

it('SeaBIOS + iPXE option ROM: iPXE BIOS gets boot.ipxe straight from the OFFER', { skip: !ready && 'needs root, network namespaces, QEMU and iPXE ROMs', timeout: 300_000 }, async () => {
  const h = await started();
  const uuid = '7e57b001-0000-4000-8000-000000000003';
  const serial = boot(uuid, ['-machine', 'graphics=off', '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', `virtio-net-pci,netdev=n0,romfile=/usr/lib/ipxe/qemu/pxe-virtio.rom,disable-legacy=on,mac=${macOf(uuid)}`, '-boot', 'n']);
  try {
    const ipxe = await answered(h, serial, (l) => l.msg === OFFER && l.uuid === uuid && l.firmware === 'ipxe');
    assert.equal(ipxe.file, 'http://10.79.0.1:8080/boot.ipxe');
    assert.equal(ipxe.arch, 'x86 BIOS');
  } finally {
    await stopVms();
  }
});
