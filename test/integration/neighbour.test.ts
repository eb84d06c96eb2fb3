// The neighbour check asks the kernel over rtnetlink; these entries are made with `ip neigh` in a namespace of the
// test's own, and every answer must be what /proc/net/arp says of the same address.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { REPO } from '../helpers/heph.ts';
import { Netns, vethPair } from '../helpers/netns.ts';

let ns: Netns;
let peer: Netns;

before(() => {
  ns = Netns.create('nb');
  peer = Netns.create('nbp');
  vethPair(ns, 'eth0', peer, 'eth0');
  ns.addr('eth0', '10.77.0.1/24');
  // A second interface: an entry on it must be found too, as /proc/net/arp lists every interface.
  ns.run('ip', ['link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p']);
  ns.run('ip', ['link', 'set', 'eth1p', 'up']);
  ns.addr('eth1', '10.78.0.1/24');
  const neigh = (ip: string, mac: string, nud: string, dev = 'eth0'): string => ns.run('ip', ['neigh', 'replace', ip, 'lladdr', mac, 'dev', dev, 'nud', nud]);
  neigh('10.77.0.5', '52:54:00:AA:BB:05', 'permanent');
  neigh('10.77.0.6', '52:54:00:aa:bb:06', 'reachable');
  neigh('10.77.0.7', '52:54:00:aa:bb:07', 'stale');
  neigh('10.77.0.8', '52:54:00:aa:bb:08', 'failed');
  neigh('10.78.0.9', '52:54:00:aa:bb:09', 'permanent', 'eth1');
});

after(() => {
  ns?.destroy();
  peer?.destroy();
});

/** Runs `body` as a module inside the namespace, with the lookups and readFileSync imported; returns its stdout. */
function inNamespace(body: string): string {
  const code = `
    import { readFileSync } from 'node:fs';
    import { arpTableMac, neighbourMac, neighbourSource } from ${JSON.stringify(`${REPO}src/ipxe/neighbour.ts`)};
    ${body}`;
  return ns.run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { timeout: 60_000 }).trim();
}

/** Each address's netlink answer and /proc/net/arp's, looked up inside the namespace. */
function lookups(ips: string[]): { ip: string; netlink: string | null; table: string | null }[] {
  const out = inNamespace(`
    const table = readFileSync('/proc/net/arp', 'utf8');
    if (neighbourSource() !== 'netlink') throw new Error('the lookups would come from /proc/net/arp, not netlink');
    console.log(JSON.stringify(${JSON.stringify(ips)}.map((ip) => ({ ip, netlink: neighbourMac(ip) ?? null, table: arpTableMac(ip, table) ?? null }))));`);
  return JSON.parse(out.split('\n').pop()!) as never;
}

test('complete entries on any interface give their MAC; incomplete, failed, unknown and malformed give none', () => {
  const got = lookups(['10.77.0.5', '10.77.0.6', '10.77.0.7', '10.77.0.8', '10.78.0.9', '10.77.0.99', '192.0.2.1', '10.77.0.1', '10.77.0.256', 'not-an-ip']);
  const mac = Object.fromEntries(got.map((g) => [g.ip, g.netlink]));
  assert.deepEqual(mac, {
    '10.77.0.5': '52:54:00:aa:bb:05',
    '10.77.0.6': '52:54:00:aa:bb:06',
    '10.77.0.7': '52:54:00:aa:bb:07',
    '10.77.0.8': null,
    '10.78.0.9': '52:54:00:aa:bb:09',
    '10.77.0.99': null,
    '192.0.2.1': null,
    '10.77.0.1': null,
    '10.77.0.256': null,
    'not-an-ip': null,
  });
  for (const g of got) assert.equal(g.netlink, g.table, `${g.ip}: netlink and /proc/net/arp agree`);
});

test('an entry that changes or goes is seen at once (nothing is cached)', () => {
  ns.run('ip', ['neigh', 'replace', '10.77.0.6', 'lladdr', '52:54:00:aa:bb:66', 'dev', 'eth0', 'nud', 'reachable']);
  ns.run('ip', ['neigh', 'del', '10.77.0.7', 'dev', 'eth0']);
  const got = lookups(['10.77.0.6', '10.77.0.7']);
  assert.deepEqual(
    got.map((g) => g.netlink),
    ['52:54:00:aa:bb:66', null],
  );
});

test('with 4000 neighbours the answers still agree; the cost per lookup is printed, not asserted', (t) => {
  const lines = Array.from({ length: 4000 }, (_, i) => `neigh replace 10.77.${16 + (i >> 8)}.${i & 255} lladdr 52:54:01:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} dev eth0 nud permanent`);
  ns.run('ip', ['route', 'add', '10.77.16.0/20', 'dev', 'eth0']);
  ns.run('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n` });
  const timing = `
    for (let i = 0; i < 200; i++) neighbourMac('10.77.0.5');
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) neighbourMac('10.77.' + (16 + (i >> 8)) + '.' + (i & 255));
    const t1 = performance.now();
    for (let i = 0; i < 1000; i++) arpTableMac('10.77.' + (16 + (i >> 8)) + '.' + (i & 255), readFileSync('/proc/net/arp', 'utf8'));
    const t2 = performance.now();
    console.log('per lookup with 4000 neighbours: netlink ' + ((t1 - t0)).toFixed(1) + ' us, /proc/net/arp ' + ((t2 - t1)).toFixed(1) + ' us');`;
  const got = lookups(['10.77.16.0', '10.77.31.159', '10.77.0.5']);
  assert.deepEqual(
    got.map((g) => g.netlink),
    ['52:54:01:00:00:00', '52:54:01:00:0f:9f', '52:54:00:aa:bb:05'],
  );
  for (const g of got) assert.equal(g.netlink, g.table);
  t.diagnostic(inNamespace(timing));
});
