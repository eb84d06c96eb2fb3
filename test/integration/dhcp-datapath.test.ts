// The DHCP data plane (worker thread, recvmmsg/sendmmsg) under real peers in network namespaces:
//   srv (heph) eth0 10.79.0.1/24 ── cli eth0 10.79.0.50/24
// A burst of distinct DISCOVERs from ISC perfdhcp (as a relay) must come back one correct OFFER each, read off the
// wire by tshark; a rejection made through the REST API (in-process writer) or the CLI (another process) takes
// effect without a restart; an oversize datagram is counted; SIGTERM during a flood stops heph promptly.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { INITIAL_TOKEN_FILE } from '../../src/api/index.ts';
import { decode } from '../../src/dhcp/codec.ts';
import { capture, metric, udpExchange } from '../helpers/dhcp.ts';
import { HEPH_BIN, REPO, spawnHeph, tempDir, type HephProcess } from '../helpers/heph.ts';
import { canUseNetns, Netns, vethPair } from '../helpers/netns.ts';
import { ovmfPxe, packet, UUID_WIRE } from '../unit/dhcp-fixtures.ts';

const enabled = canUseNetns();
const tmpDir = tempDir('heph-dhcp-dp-');
const tmp = tmpDir.path;
const dataDir = join(tmp, 'data');
const BURST = 2000;

describe('DHCP data plane in network namespaces', { skip: !enabled && 'needs root and iproute2 (network namespaces)' }, () => {
  let srv: Netns, cli: Netns;
  let heph: HephProcess;
  const metrics = (): string => cli.run('curl', ['-sf', 'http://10.79.0.1:8080/metrics']);

  before(async () => {
    srv = Netns.create('psrv');
    cli = Netns.create('pcli');
    vethPair(srv, 'eth0', cli, 'eth0');
    srv.addr('eth0', '10.79.0.1/24');
    cli.addr('eth0', '10.79.0.50/24');
    heph = await spawnHeph(
      {
        dataDir,
        log: { level: 'info' },
        network: { interfaces: ['eth0'] },
        http: { listen: '0.0.0.0', port: 8080 },
        api: { port: 9080, grpc: { enabled: false, port: 0 } },
        dhcp: { enabled: true, relays: ['10.79.0.50/32'] },
      },
      { netns: srv },
    );
  });

  after(async () => {
    await heph?.stop();
    for (const ns of [srv, cli]) ns?.destroy();
    tmpDir.remove();
  });

  it(`answers a burst of ${BURST} distinct DISCOVERs with one correct OFFER each`, async () => {
    const cap = await capture(cli, 'eth0', 'udp port 67', tmp);
    const pxe60 = Buffer.from('PXEClient:Arch:00007:UNDI:003000').toString('hex');
    // -R: a new MAC per DISCOVER (no two are the same machine); perfdhcp exits non-zero when it saw drops.
    const out = cli.run('sh', ['-c', `perfdhcp -4 -l eth0 -r 4000 -n ${BURST} -R 1000000 -i -o 60,${pxe60} -o 93,0007 -o 94,010300 10.79.0.1 2>&1; true`], { timeout: 60_000 });
    const rows = await cap.stop();
    // perfdhcp's rate loop may overshoot -n by a packet or two: what it sent is the count to answer.
    const sent = Number(/sent packets: (\d+)/.exec(out)?.[1]);
    assert.ok(sent >= BURST, out);
    const discovers = rows.filter((r) => r['dhcp.option.dhcp'] === '1' && r['ip.dst'] === '10.79.0.1');
    const offers = rows.filter((r) => r['dhcp.option.dhcp'] === '2' && r['ip.src'] === '10.79.0.1');
    assert.equal(discovers.length, sent, 'the capture saw the whole burst');
    assert.equal(new Set(discovers.map((r) => r['dhcp.hw.mac_addr'].split(',')[0])).size, sent, 'distinct MACs');
    const byXid = new Map(discovers.map((r) => [r['dhcp.id'], r]));
    assert.equal(offers.length, sent, 'one OFFER per DISCOVER');
    for (const o of offers) {
      const d = byXid.get(o['dhcp.id']);
      assert.ok(d, `OFFER ${o['dhcp.id']} answers a DISCOVER`);
      byXid.delete(o['dhcp.id']);
      // tshark lists the header's MAC first (again when an option carries one).
      assert.equal(o['dhcp.hw.mac_addr'].split(',')[0], d['dhcp.hw.mac_addr'].split(',')[0]);
      assert.equal(o['ip.dst'], '10.79.0.50');
      assert.equal(o['udp.dstport'], '67');
      assert.equal(o['dhcp.ip.relay'], '10.79.0.50');
      assert.equal(o['dhcp.ip.your'], '0.0.0.0');
      assert.equal(o['dhcp.ip.server'], '10.79.0.1');
      assert.equal(o['dhcp.option.dhcp_server_id'], '10.79.0.1');
      assert.equal(o['dhcp.option.vendor_class_id'], 'PXEClient');
      assert.equal(o['dhcp.file'], 'ipxe.efi');
      assert.equal(o['dhcp.option.bootfile_name'], 'ipxe.efi');
    }
    assert.equal(byXid.size, 0, 'no DISCOVER left unanswered');
    // The counters arrive from the worker within its flush interval.
    await sleep(200);
    const m = metrics();
    assert.equal(metric(m, 'heph_dhcp_received_total{port="dhcp"}'), sent);
    assert.equal(metric(m, 'heph_dhcp_answered_total{type="offer"}'), sent);
    assert.ok(metric(m, 'heph_dhcp_sightings_dropped_total') > 0, 'a flood of new MACs is over the sightings budget');
  });

  it('a rejection takes effect without a restart, from the REST API and from the CLI', async () => {
    const mac = [0x52, 0x54, 0x00, 0x77, 0x77, 0x01];
    const discover = (): Buffer | undefined =>
      udpExchange(cli, { address: '10.79.0.50', port: 67 }, { address: '10.79.0.1', port: 67 }, packet(ovmfPxe(1, [...UUID_WIRE.slice(0, 15), 0x77]), { chaddr: mac, giaddr: [10, 79, 0, 50], xid: 0x7701 }));
    const first = discover();
    assert.ok(first, 'answered before the rejection');
    const seen = await heph.waitForLog((l) => l.msg === 'new machine seen by proxy-DHCP' && l.mac === '52:54:00:77:77:01');
    const id = String(seen.machine);

    const token = readFileSync(join(dataDir, INITIAL_TOKEN_FILE), 'utf8').trim();
    const status = srv.run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '-d', '{}', `http://127.0.0.1:9080/api/v1/machines/${id}/reject`]);
    assert.equal(status, '200');
    assert.equal(discover(), undefined, 'silent right after the API said rejected');
    assert.match(metrics(), /heph_dhcp_ignored_total\{reason="rejected"\} [1-9]/);

    // The CLI writes from its own process: the daemon sees it through the database's data_version (checked each second).
    const config = join(tmp, 'cli.yaml');
    writeFileSync(config, stringify({ dataDir }));
    const r = await new Promise<{ code: number | null; out: string }>((resolve) =>
      execFile(process.execPath, [HEPH_BIN, 'machines', 'accept', id, '--config', config], { cwd: REPO, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr })),
    );
    assert.equal(r.code, 0, r.out);
    await sleep(1500);
    const again = discover();
    assert.ok(again, 'answered again after the CLI accepted it');
    const d = decode(again);
    assert.ok(d.ok);
    assert.deepEqual([...d.packet.chaddr.subarray(0, 6)], mac);
  });

  it('counts a datagram longer than a receive slot as malformed and goes on answering', () => {
    const before = metric(metrics(), 'heph_dhcp_malformed_total{reason="oversize"}');
    assert.equal(udpExchange(cli, { address: '10.79.0.50', port: 67 }, { address: '10.79.0.1', port: 67 }, Buffer.concat([packet(ovmfPxe(), { giaddr: [10, 79, 0, 50] }), Buffer.alloc(3000)])), undefined);
    assert.equal(metric(metrics(), 'heph_dhcp_malformed_total{reason="oversize"}'), before + 1);
    assert.ok(udpExchange(cli, { address: '10.79.0.50', port: 67 }, { address: '10.79.0.1', port: 67 }, packet(ovmfPxe(), { giaddr: [10, 79, 0, 50], xid: 0x5151 })));
  });

  it('stops promptly and cleanly on SIGTERM while a flood is being answered', async () => {
    const pxe60 = Buffer.from('PXEClient:Arch:00007:UNDI:003000').toString('hex');
    const flood = cli.spawn('perfdhcp', ['-4', '-l', 'eth0', '-r', '5000', '-p', '10', '-R', '1000000', '-i', '-o', `60,${pxe60}`, '-o', '93,0007', '10.79.0.1']);
    try {
      await sleep(1500);
      const answered = metric(metrics(), 'heph_dhcp_answered_total{type="offer"}');
      assert.ok(answered > BURST + 1000, `answering the flood (${answered})`);
      const t = performance.now();
      const code = await heph.stop();
      const took = performance.now() - t;
      assert.equal(code, 0, heph.stderr());
      assert.ok(took < 4000, `stopped in ${took.toFixed(0)} ms, within shutdown.graceMs`);
      assert.ok(heph.logs.some((l) => l.msg === 'heph stopped'));
      assert.ok(!heph.logs.some((l) => l.svc === 'dhcp' && (l.level as number) >= 50), 'no error from the DHCP service');
    } finally {
      flood.kill('SIGINT');
      await new Promise((r) => (flood.exitCode !== null ? r(null) : flood.once('exit', r)));
    }
  });
});
