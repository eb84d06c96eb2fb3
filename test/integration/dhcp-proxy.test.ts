// Proxy-DHCP against real peers in network namespaces:
//   srv (heph) eth0 10.77.0.1/24 ── cli eth0 10.77.0.50/24   served interface
//   srv (heph) eth1 10.78.0.1/24 ── oth eth0 10.78.0.50/24   NOT served (network.interfaces = [eth0])
// Peers: busybox udhcpc (a real DHCP client sending PXE options), ISC perfdhcp (a real relay agent: unicast
// DISCOVERs with giaddr), curl (HTTP Boot binary). Replies are read off the wire by tshark's DHCP dissector,
// an independent decoder; the 4011 exchange, which no installed tool speaks, uses a plain UDP socket.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decode, decodeSubOptions } from '../../src/dhcp/codec.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { spawnHeph, tempDir, type HephProcess } from '../helpers/heph.ts';
import { canUseNetns, Netns, vethPair } from '../helpers/netns.ts';
import { capture as captureIn, udpExchange } from '../helpers/dhcp.ts';
import { ovmfBootServerRequest, ovmfPxe, opt, packet, UUID_WIRE } from '../unit/dhcp-fixtures.ts';

const enabled = canUseNetns();
const REJECTED_MAC = '52:54:00:66:66:66';
const tmpDir = tempDir('heph-dhcp-int-');
const tmp = tmpDir.path;
const capture = (ns: Netns, iface: string, filter: string) => captureIn(ns, iface, filter, tmp);

describe('proxy-DHCP in network namespaces', { skip: !enabled && 'needs root and iproute2 (network namespaces)' }, () => {
  let srv: Netns, cli: Netns, oth: Netns;
  let heph: HephProcess;

  before(async () => {
    srv = Netns.create('dsrv');
    cli = Netns.create('dcli');
    oth = Netns.create('doth');
    vethPair(srv, 'eth0', cli, 'eth0');
    vethPair(srv, 'eth1', oth, 'eth0');
    srv.addr('eth0', '10.77.0.1/24');
    srv.addr('eth1', '10.78.0.1/24');
    cli.addr('eth0', '10.77.0.50/24');
    oth.addr('eth0', '10.78.0.50/24');
    // A machine the operator rejected, already in the inventory heph will open.
    const dataDir = join(tmp, 'data');
    const inv = openInventory(dataDir);
    const machines = new Machines(inv.db);
    machines.update(machines.resolve({ mac: REJECTED_MAC }).machine.id, { acceptance: 'rejected' });
    inv.db.close();
    heph = await spawnHeph(
      {
        dataDir,
        log: { level: 'debug' },
        network: { interfaces: ['eth0'] },
        http: { listen: '0.0.0.0', port: 8080 },
        dhcp: { enabled: true, relays: ['10.77.0.50/32'] },
      },
      { netns: srv },
    );
  });

  after(async () => {
    await heph?.stop();
    for (const ns of [srv, cli, oth]) ns?.destroy();
    tmpDir.remove();
  });

  const udhcpc = (ns: Netns) =>
    ns.run('busybox', ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '3', '-T', '2', '-s', '/bin/true', '-V', 'PXEClient:Arch:00007:UNDI:003000', '-x', '0x5d:0007', '-x', '0x5e:010300', '-x', `0x61:00${Buffer.from(UUID_WIRE).toString('hex')}`], { timeout: 20_000 });

  it('busybox udhcpc sending PXE options gets a proxy OFFER broadcast on the served interface', async () => {
    const cap = await capture(cli, 'eth0', 'udp dst port 68');
    try {
      udhcpc(cli);
    } catch {
      // udhcpc gives up (no lease: a proxy never offers an address); what it received is on the wire.
    }
    const rows = (await cap.stop()).filter((r) => r['dhcp.option.dhcp'] === '2');
    assert.ok(rows.length >= 1, 'an OFFER reached the client');
    const r = rows[0]!;
    assert.equal(r['ip.src'], '10.77.0.1');
    assert.equal(r['ip.dst'], '255.255.255.255');
    assert.equal(r['udp.dstport'], '68');
    assert.equal(r['dhcp.ip.your'], '0.0.0.0');
    assert.equal(r['dhcp.ip.server'], '10.77.0.1');
    assert.equal(r['dhcp.server'], '10.77.0.1');
    assert.equal(r['dhcp.file'], 'ipxe.efi');
    assert.equal(r['dhcp.option.dhcp_server_id'], '10.77.0.1');
    assert.equal(r['dhcp.option.vendor_class_id'], 'PXEClient');
    assert.equal(r['dhcp.option.tftp_server_name'], '10.77.0.1');
    assert.equal(r['dhcp.option.bootfile_name'], 'ipxe.efi');
    await heph.waitForLog((l) => l.msg === 'new machine seen by proxy-DHCP' && l.uuid === '7e57b001-0000-4000-8000-000000000001', 20_000);
  });

  it('a DISCOVER on the interface heph does not serve gets no answer (but the same host answers on eth0)', async () => {
    const cap = await capture(oth, 'eth0', 'udp dst port 68');
    try {
      udhcpc(oth);
    } catch {
      // No answer at all: expected.
    }
    const rows = await cap.stop();
    assert.deepEqual(rows, [], 'nothing came back on the unserved interface');
    // And the daemon never even received it: its sockets are bound to eth0.
    const metrics = cli.run('curl', ['-sf', 'http://10.77.0.1:8080/metrics']);
    const received = Number(/heph_dhcp_received_total\{port="dhcp"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    const before = received;
    try {
      udhcpc(oth);
    } catch {
      // As above.
    }
    const again = Number(/heph_dhcp_received_total\{port="dhcp"\} (\d+)/.exec(cli.run('curl', ['-sf', 'http://10.77.0.1:8080/metrics']))?.[1] ?? 0);
    assert.equal(again, before);
  });

  it('an EDK2-shaped boot-server REQUEST to 4011 gets an ACK back at its source ip:port', () => {
    const req = packet(ovmfBootServerRequest(), { ciaddr: [10, 77, 0, 50], xid: 0x4011 });
    const bytes = udpExchange(cli, { address: '10.77.0.50', port: 4011 }, { address: '10.77.0.1', port: 4011 }, req);
    assert.ok(bytes, 'an ACK came back');
    const d = decode(bytes);
    assert.ok(d.ok);
    const p = d.packet;
    assert.equal(p.xid, 0x4011);
    assert.deepEqual([...p.options.get(53)!], [5]);
    assert.equal(p.siaddr, '10.77.0.1');
    assert.equal(p.yiaddr, '0.0.0.0');
    assert.equal(p.file, 'ipxe.efi');
    assert.equal(p.options.get(67)!.toString(), 'ipxe.efi');
    assert.equal(p.options.get(60)!.toString(), 'PXEClient');
    assert.deepEqual([...p.options.get(97)!], [0, ...UUID_WIRE]);
    assert.deepEqual([...decodeSubOptions(p.options.get(43)!)!.get(71)!], [0, 0, 0, 0]);
  });

  it('perfdhcp as a relay agent gets its relayed DISCOVERs answered by unicast to giaddr:67', async () => {
    const cap = await capture(cli, 'eth0', 'udp dst port 67 and src host 10.77.0.1');
    // perfdhcp exits non-zero whenever it saw drops; its report is what counts.
    const pxe60 = Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex');
    const out = cli.run('sh', ['-c', `perfdhcp -4 -l eth0 -r 5 -n 5 -i -R 5 -o 60,${pxe60} -o 93,0000 -o 94,010201 10.77.0.1 2>&1; true`], { timeout: 30_000 });
    const rows = await cap.stop();
    // perfdhcp stops listening as soon as it has sent the last DISCOVER (-W is refused together with -i), so the
    // last OFFER may arrive after it quit: the wire is the full record, perfdhcp's count the peer's view.
    assert.match(out, /sent packets: 5/, out);
    assert.ok(Number(/received packets: (\d+)/.exec(out)?.[1]) >= 4, out);
    assert.equal(rows.length, 5, cli.run('curl', ['-sf', 'http://10.77.0.1:8080/metrics']).split('\n').filter((l) => l.startsWith('heph_dhcp')).join('\n') + out);
    for (const r of rows) {
      assert.equal(r['ip.dst'], '10.77.0.50');
      assert.equal(r['udp.dstport'], '67');
      assert.equal(r['dhcp.ip.relay'], '10.77.0.50');
      assert.equal(r['dhcp.file'], 'undionly.kpxe');
      assert.equal(r['dhcp.option.vendor.pxeclient.discovery_control'], '0x08');
    }
  });

  it('echoes option 82 to an allowed relay, and ignores a giaddr outside dhcp.relays', () => {
    const o82 = opt(82, [1, 5, ...Buffer.from('sw1/7')]);
    const relayed = packet([...ovmfPxe().slice(0, -1), ...o82, 255], { giaddr: [10, 77, 0, 50] });
    const got = udpExchange(cli, { address: '10.77.0.50', port: 67 }, { address: '10.77.0.1', port: 67 }, relayed);
    assert.ok(got);
    const d = decode(got);
    assert.ok(d.ok);
    assert.deepEqual([...d.packet.options.get(82)!], o82.slice(2));
    const spoofed = packet(ovmfPxe(), { giaddr: [10, 77, 0, 99] });
    assert.equal(udpExchange(cli, { address: '10.77.0.50', port: 67 }, { address: '10.77.0.1', port: 67 }, spoofed), undefined);
    assert.match(cli.run('curl', ['-sf', 'http://10.77.0.1:8080/metrics']), /heph_dhcp_ignored_total\{reason="relay-not-allowed"\} [1-9]/);
  });

  it('stays silent to a machine the inventory says is rejected, and answers its neighbour', () => {
    // Each with its own SMBIOS UUID: a shared one would make them one machine (UUID wins over MAC). Sent to the
    // subnet broadcast: the namespace has no default route, so 255.255.255.255 is unroutable for a plain socket.
    const discover = (last: number) =>
      udpExchange(cli, { address: '0.0.0.0', port: 68 }, { address: '10.77.0.255', port: 67 }, packet(ovmfPxe(1, [...UUID_WIRE.slice(0, 15), last]), { chaddr: [0x52, 0x54, 0x00, 0x66, 0x66, last], xid: 0x1234 }));
    assert.equal(discover(0x66), undefined);
    assert.match(cli.run('curl', ['-sf', 'http://10.77.0.1:8080/metrics']), /heph_dhcp_ignored_total\{reason="rejected"\} 1\n/, 'received, then ignored as rejected');
    const ok = discover(0x67);
    assert.ok(ok, 'the neighbour got an OFFER');
    const d = decode(ok);
    assert.ok(d.ok);
    assert.deepEqual([...d.packet.chaddr.subarray(0, 6)], [0x52, 0x54, 0x00, 0x66, 0x66, 0x67]);
  });

  it('serves the allowlisted iPXE binary for UEFI HTTP Boot: HEAD with Content-Length, GET with the bytes', () => {
    const size = statSync('/usr/lib/ipxe/ipxe.efi').size;
    const head = cli.run('curl', ['-sfI', 'http://10.77.0.1:8080/ipxe.efi']);
    assert.match(head, new RegExp(`content-length: ${size}`, 'i'));
    const sum = cli.run('sh', ['-c', 'curl -sf http://10.77.0.1:8080/ipxe.efi | sha256sum']).split(' ')[0];
    assert.equal(sum, createHash('sha256').update(readFileSync('/usr/lib/ipxe/ipxe.efi')).digest('hex'));
    assert.equal(cli.run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--path-as-is', 'http://10.77.0.1:8080/../ipxe/ipxe.efi']), '404');
    assert.equal(cli.run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://10.77.0.1:8080/ipxe.pxe']), '404');
  });
});
