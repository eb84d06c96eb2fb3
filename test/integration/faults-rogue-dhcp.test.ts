// A second proxy-DHCP on the served network: real dnsmasq in proxy mode next to heph on one bridge, a real PXE-ish
// client (busybox udhcpc with PXE options) broadcasting DISCOVERs. heph must notice dnsmasq's offers and report
// them as an ALERT log line, an alert.dhcp-foreign timeline event and a metric, and must not report its own.
//   rlan: bridge br0 ── srv eth0 10.96.0.1 (heph) ── rog eth0 10.96.0.2 (dnsmasq) ── cli eth0 10.96.0.50 (udhcpc)
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { DB_FILE } from '../../src/inventory/db.ts';
import { spawnHeph, tempDir, type HephProcess } from '../helpers/heph.ts';
import { canUseNetns, Netns, vethPair } from '../helpers/netns.ts';

const UUID_HEX = '01b0577e000000408000000000000001';

describe('faults: a second proxy-DHCP on the served network', { skip: !canUseNetns() && 'needs root and iproute2 (network namespaces)' }, () => {
  const tmp = tempDir('heph-rogue-');
  const dataDir = join(tmp.path, 'data');
  let lan: Netns, srv: Netns, rog: Netns, cli: Netns;
  let heph: HephProcess;
  let dnsmasq: ChildProcess | undefined;

  before(async () => {
    lan = Netns.create('rlan');
    srv = Netns.create('rsrv');
    rog = Netns.create('rrog');
    cli = Netns.create('rcli');
    lan.run('ip', ['link', 'add', 'br0', 'type', 'bridge']);
    for (const [ns, port] of [[srv, 'p1'], [rog, 'p2'], [cli, 'p3']] as const) {
      vethPair(ns, 'eth0', lan, port);
      lan.run('ip', ['link', 'set', port, 'master', 'br0']);
    }
    lan.run('ip', ['link', 'set', 'br0', 'up']);
    srv.addr('eth0', '10.96.0.1/24');
    rog.addr('eth0', '10.96.0.2/24');
    cli.addr('eth0', '10.96.0.50/24');
    heph = await spawnHeph({ dataDir, log: { level: 'info' }, network: { interfaces: ['eth0'] }, http: { listen: '0.0.0.0', port: 8080 }, dhcp: { enabled: true } }, { netns: srv });
  });

  after(async () => {
    if (dnsmasq && dnsmasq.exitCode === null) dnsmasq.kill('SIGTERM');
    await heph?.stop();
    for (const ns of [cli, rog, srv, lan]) ns?.destroy();
    tmp.remove();
  });

  const discover = (): void => {
    try {
      cli.run('busybox', ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '2', '-T', '1', '-s', '/bin/true', '-V', 'PXEClient:Arch:00007:UNDI:003000', '-x', '0x5d:0007', '-x', '0x5e:010300', '-x', `0x61:00${UUID_HEX}`], { timeout: 20_000 });
    } catch {
      // No lease (proxies never offer addresses): udhcpc gives up, which is fine; the offers were on the wire.
    }
  };
  const foreignMetric = (): string => srv.run('curl', ['-sf', 'http://127.0.0.1:8080/metrics']).split('\n').filter((l) => l.startsWith('heph_dhcp_foreign_pxe_offers_total{')).join('\n');
  const alerts = (): { message: string; ip: string; data: string }[] => {
    const db = new Database(join(dataDir, DB_FILE), { readonly: true });
    try {
      return db.prepare<[], { message: string; ip: string; data: string }>(`SELECT message, ip, data FROM timeline WHERE kind = 'alert.dhcp-foreign'`).all();
    } finally {
      db.close();
    }
  };

  test('heph alone: its own offers are not reported', async () => {
    assert.match(JSON.stringify((await fetchHealth(srv)).services), /udp\/watch\/eth0/);
    discover();
    await sleep(300);
    assert.equal(foreignMetric(), '');
    assert.deepEqual(alerts(), []);
    assert.ok(!heph.logs.some((l) => String(l.msg).startsWith('ALERT')));
  });

  test('dnsmasq as a second proxy-DHCP: an ALERT, a timeline event and a metric naming it', async () => {
    const conf = join(tmp.path, 'dnsmasq.conf');
    writeFileSync(conf, ['port=0', 'interface=eth0', 'bind-interfaces', 'dhcp-range=10.96.0.0,proxy,255.255.255.0', 'pxe-service=X86-64_EFI,"rogue",rogue.efi', 'pxe-service=x86PC,"rogue",rogue', 'log-facility=/dev/null', 'leasefile-ro', 'dhcp-leasefile=/dev/null'].join('\n'));
    dnsmasq = rog.spawn('dnsmasq', ['--keep-in-foreground', `--conf-file=${conf}`, `--pid-file=${join(tmp.path, 'dnsmasq.pid')}`]);
    await sleep(1000);
    assert.equal(dnsmasq.exitCode, null, 'dnsmasq is running');
    discover();
    const line = await heph.waitForLog((l) => String(l.msg).startsWith('ALERT') && l.server === '10.96.0.2', 10_000);
    assert.equal(line.kind, 'proxy');
    assert.match(String(line.msg), /another proxy-DHCP server \(10\.96\.0\.2\)/);
    assert.match(foreignMetric(), /heph_dhcp_foreign_pxe_offers_total\{server="10\.96\.0\.2",kind="proxy"\} [1-9]/);
    let rows = alerts();
    for (let i = 0; i < 20 && rows.length === 0; i++) {
      await sleep(100);
      rows = alerts();
    }
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.ip, '10.96.0.2');
    assert.match(rows[0]!.message, /machines may boot from it instead of heph/);
    // Reported once per server and interval; the metric keeps counting every offer.
    const before = Number(/\} (\d+)/.exec(foreignMetric())?.[1]);
    discover();
    await sleep(500);
    assert.ok(Number(/\} (\d+)/.exec(foreignMetric())?.[1]) > before);
    assert.equal(alerts().length, 1);
    assert.equal(heph.proc.exitCode, null);
  });
});

async function fetchHealth(ns: Netns): Promise<{ services: Record<string, unknown> }> {
  return JSON.parse(ns.run('curl', ['-s', 'http://127.0.0.1:8080/healthz'])) as { services: Record<string, unknown> };
}
