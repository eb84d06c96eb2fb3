// A served interface deleted and created again (a bridge rebuilt, a VLAN re-added) gets a new kernel index, and a
// socket bound to the old one hears nothing, without any error. heph must notice, say so while the interface is
// gone, and answer again once it is back: real heph in a namespace, DISCOVERs from a real socket in another.
//   srv (heph) eth0 10.79.0.1/24 ── cli eth0 10.79.0.50/24
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decode, MessageType, Opt } from '../../src/dhcp/codec.ts';
import { metric, udpExchange } from '../helpers/dhcp.ts';
import { spawnHeph, tempDir, type HephProcess } from '../helpers/heph.ts';
import { canUseNetns, Netns, vethPair } from '../helpers/netns.ts';
import { eventually } from '../helpers/wait.ts';
import { ovmfPxe, packet } from '../unit/dhcp-fixtures.ts';

describe('proxy-DHCP when its interface is recreated', { skip: !canUseNetns() && 'needs root and iproute2 (network namespaces)' }, () => {
  const tmp = tempDir('heph-relink-');
  let srv: Netns, cli: Netns;
  let heph: HephProcess;

  const link = (): void => {
    vethPair(srv, 'eth0', cli, 'eth0');
    srv.addr('eth0', '10.79.0.1/24');
    cli.addr('eth0', '10.79.0.50/24');
  };
  /** An OFFER for a DISCOVER broadcast on the client's network, or undefined. */
  const offer = (): ReturnType<typeof decode> | undefined => {
    const reply = udpExchange(cli, { address: '0.0.0.0', port: 68 }, { address: '10.79.0.255', port: 67 }, packet(ovmfPxe(), { xid: 0x5151 }));
    if (reply === undefined) return undefined;
    const d = decode(reply);
    return d.ok && d.packet.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.OFFER ? d : undefined;
  };
  const dhcpHealth = (): { state: string; detail?: string } => (JSON.parse(srv.run('curl', ['-s', 'http://127.0.0.1:8080/healthz'])) as { services: Record<string, { state: string; detail?: string }> }).services['dhcp']!;
  const rebinds = (): number => metric(srv.run('curl', ['-sf', 'http://127.0.0.1:8080/metrics']), 'heph_dhcp_rebinds_total');

  before(async () => {
    srv = Netns.create('lsrv');
    cli = Netns.create('lcli');
    link();
    heph = await spawnHeph({ dataDir: tmp.path, log: { level: 'info' }, network: { interfaces: ['eth0'] }, http: { listen: '0.0.0.0', port: 8080 }, dhcp: { enabled: true } }, { netns: srv });
  });

  after(async () => {
    await heph?.stop();
    for (const ns of [cli, srv]) ns?.destroy();
    tmp.remove();
  });

  it('answers, reports the interface gone while it is, and answers again once it is created anew', async () => {
    assert.ok(offer(), 'an OFFER before anything happens');
    assert.equal(rebinds(), 0);

    srv.run('ip', ['link', 'del', 'eth0']);
    await eventually(() => (dhcpHealth().state === 'failed' ? true : undefined), 'health to say the interface is gone', 8000, 200);
    assert.match(dhcpHealth().detail ?? '', /interface eth0 is gone/);
    await heph.waitForLog((l) => l['msg'] === 'a served interface is gone: proxy-DHCP cannot answer on it until it is back');

    link();
    await eventually(() => (dhcpHealth().state === 'up' ? true : undefined), 'health to be up again', 8000, 200);
    assert.equal(dhcpHealth().detail, undefined, 'the same address came back: nothing left to say');
    assert.ok(await eventually(() => offer(), 'an OFFER on the new interface', 8000, 100));
    assert.equal(rebinds(), 1);
    await heph.waitForLog((l) => l['msg'] === 'a served interface was created again: the DHCP sockets are bound to it anew');
  });

  it('rebinds when the interface is recreated between two looks, and says when it came back with another address', async () => {
    srv.run('ip', ['link', 'del', 'eth0']);
    vethPair(srv, 'eth0', cli, 'eth0');
    srv.addr('eth0', '10.79.0.2/24');
    cli.addr('eth0', '10.79.0.50/24');
    await eventually(() => (rebinds() === 2 ? true : undefined), 'a second rebind', 8000, 200);
    const h = dhcpHealth();
    assert.equal(h.state, 'up');
    assert.match(h.detail ?? '', /eth0 is now 10\.79\.0\.2, was 10\.79\.0\.1: restart heph/);
    // Still answering on the new interface (with the address heph started with, as the detail says).
    const d = await eventually(() => offer(), 'an OFFER after the second rebind', 8000, 100);
    assert.equal(d.ok && d.packet.siaddr, '10.79.0.1');
  });

  it('an interface renamed away and back keeps its index: health comes back with no rebind, and it answers', async () => {
    srv.run('ip', ['link', 'set', 'eth0', 'down']);
    srv.run('ip', ['link', 'set', 'eth0', 'name', 'eth9']);
    await eventually(() => (dhcpHealth().state === 'failed' ? true : undefined), 'health to say the interface is gone', 8000, 200);
    srv.run('ip', ['link', 'set', 'eth9', 'name', 'eth0']);
    srv.run('ip', ['link', 'set', 'eth0', 'up']);
    await eventually(() => (dhcpHealth().state === 'up' ? true : undefined), 'health to be up again', 8000, 200);
    // Still the moved address of the test before: that is still true.
    assert.match(dhcpHealth().detail ?? '', /eth0 is now 10\.79\.0\.2, was 10\.79\.0\.1/);
    assert.ok(await eventually(() => offer(), 'an OFFER on the same interface', 8000, 100));
    assert.equal(rebinds(), 2, 'the same index: no rebind');
  });
});
