// Real firmware against heph's proxy-DHCP: OVMF (EDK2) doing UEFI HTTP Boot in QEMU (netboot-lab.md path P3).
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
let qemu: ChildProcess | undefined;
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

after(async () => {
  qemu?.kill('SIGKILL');
  dnsmasq?.kill('SIGTERM');
  await heph?.stop();
  for (const ns of [lan, srv, site]) ns?.destroy();
  dir.remove();
});

it('OVMF UEFI HTTP Boot: HTTPClient OFFER → ipxe.efi over HTTP → iPXE asks again and gets boot.ipxe', { skip: !ready && 'needs root, network namespaces, QEMU and OVMF', timeout: 300_000 }, async () => {
  heph = await spawnHeph({ log: { level: 'debug' }, network: { interfaces: ['eth0'] }, http: { listen: '0.0.0.0', port: 8080 }, dhcp: { enabled: true } }, { netns: srv });
  dnsmasq = site.spawn('dnsmasq', ['--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--interface=eth0', '--bind-interfaces', '--dhcp-range=10.79.0.100,10.79.0.150,1h', `--dhcp-leasefile=${join(dir.path, 'leases')}`, `--pid-file=${join(dir.path, 'dnsmasq.pid')}`]);
  const vars = join(dir.path, 'vars.fd');
  copyFileSync(VARS, vars);
  const serial = join(dir.path, 'serial.log');
  qemu = lan.spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-m', '256', '-nodefaults', '-display', 'none', '-serial', `file:${serial}`,
    '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF}`, '-drive', `if=pflash,format=raw,file=${vars}`,
    '-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no',
    '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', 'virtio-net-pci,netdev=n0,romfile=',
    '-uuid', '7e57b001-0000-4000-8000-000000000001',
  ]);
  const offer = (firmware: string) => (l: Record<string, unknown>) => l.msg === 'DISCOVER answered with a proxy OFFER' && l.firmware === firmware;
  const http = await heph.waitForLog(offer('http'), 240_000).catch((e: Error) => assert.fail(`${e.message}\nserial: ${existsSync(serial) ? readFileSync(serial, 'utf8').slice(-2000) : ''}`));
  assert.equal(http.file, 'http://10.79.0.1:8080/ipxe.efi');
  assert.equal(http.uuid, '7e57b001-0000-4000-8000-000000000001');
  const ipxe = await heph.waitForLog(offer('ipxe'), 240_000).catch((e: Error) => assert.fail(`${e.message}\nserial: ${existsSync(serial) ? readFileSync(serial, 'utf8').slice(-2000) : ''}`));
  assert.equal(ipxe.file, 'http://10.79.0.1:8080/boot.ipxe');
  assert.equal(ipxe.uuid, '7e57b001-0000-4000-8000-000000000001');
});
