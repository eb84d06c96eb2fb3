// kill -9 heph in the middle of a (small) boot storm, restart it on the same data dir: every machine still
// completes (firmware retries from DHCP, as the storm client does), and nothing that was committed before the kill
// is lost: boot tokens, audit rows and machines read from the database just before the kill are all still there,
// every script the machines received carried a token that was on disk, and every config a machine received has
// its config.served audit row.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { StormLine } from '../../bench/storm/client.ts';
import { startStormClient } from '../../bench/storm/driver.ts';
import { createLab, GRPC_PORT, HTTP_PORT, prepareDataDir, SERVER_IP, stormSettings, writeRelease, type Lab } from '../../bench/storm/lab.ts';
import { hashToken } from '../../src/configserve/tokens.ts';
import { DB_FILE } from '../../src/inventory/db.ts';
import { spawnHeph, tempDir, type HephProcess } from '../helpers/heph.ts';
import { canUseNetns } from '../helpers/netns.ts';

const N = 24;

interface Snapshot {
  tokens: Map<string, { machine: string; ip: string }>;
  audit: Set<number>;
  machines: Set<string>;
  served: Map<string, number>;
}

function snapshot(file: string, readonly: boolean): Snapshot {
  const db = new Database(file, { readonly, fileMustExist: true });
  try {
    const tokens = new Map(db.prepare<[], { hash: string; machine_id: string; ip: string }>('SELECT hash, machine_id, ip FROM boot_tokens').all().map((r) => [r.hash, { machine: r.machine_id, ip: r.ip }]));
    const audit = new Set(db.prepare<[], { id: number }>('SELECT id FROM audit').all().map((r) => r.id));
    const machines = new Set(db.prepare<[], { id: string }>('SELECT id FROM machines').all().map((r) => r.id));
    const served = new Map(db.prepare<[], { ip: string; n: number }>(`SELECT ip, count(*) AS n FROM audit WHERE action = 'config.served' GROUP BY ip`).all().map((r) => [r.ip, r.n]));
    return { tokens, audit, machines, served };
  } finally {
    db.close();
  }
}

describe('faults: kill -9 during a boot storm', { skip: !canUseNetns() && 'needs root and iproute2 (network namespaces)' }, () => {
  const tmp = tempDir('heph-kill9-');
  let lab: Lab | undefined;
  let heph: HephProcess | undefined;
  after(async () => {
    await heph?.stop();
    lab?.destroy();
    tmp.remove();
  });

  test('restarted on the same data dir, every machine completes and no committed row is lost', { timeout: 300_000 }, async () => {
    lab = createLab(N, 'k9');
    const release = writeRelease(join(tmp.path, 'release'), 256 * 1024, 1024 * 1024);
    const dataDir = join(tmp.path, 'data');
    const profilesDir = join(tmp.path, 'profiles');
    await prepareDataDir(dataDir, profilesDir, release);
    const settings = stormSettings(dataDir, profilesDir, N);
    const dbFile = join(dataDir, DB_FILE);
    heph = await spawnHeph(settings, { netns: lab.srv });

    // What the machines saw before the kill: the last script's token per machine, and configs received.
    const seenToken = new Map<string, string>();
    const gotConfig = new Set<string>();
    let killed = false;
    let before: Snapshot | undefined;
    let atKill: { seenToken: Map<string, string>; gotConfig: Set<string> } | undefined;
    // heph stays down until a machine has failed an attempt after the kill: TFTP rides out a short outage by
    // retransmitting (5 × 2 s) and DHCP by rediscovering, so a quick restart could go unseen by every machine that
    // happened to be in those steps. Up to 30 s: past the TFTP client's retries.
    let sawOutage = (): void => {};
    const outageSeen = new Promise<void>((resolve) => (sawOutage = resolve));
    const first = heph;
    const killNow = (): void => {
      if (killed) return;
      killed = true;
      // Read what is committed, then kill at once: anything committed later is a bonus, never a loss.
      before = snapshot(dbFile, true);
      atKill = { seenToken: new Map(seenToken), gotConfig: new Set(gotConfig) };
      first.proc.kill('SIGKILL');
    };
    const client = startStormClient(
      lab.cli,
      { n: N, concurrency: 6, server: SERVER_IP, httpPort: HTTP_PORT, grpcPort: GRPC_PORT, runId: 'k9run', retryForMs: 200_000, progress: true },
      (l: StormLine) => {
        if (l.kind !== 'progress') return;
        if (killed && !l.done) sawOutage();
        if (l.configPath && !killed) seenToken.set(l.ip, l.configPath.slice('/config/'.length));
        if (l.configServed && !killed) gotConfig.add(l.ip);
        if (gotConfig.size >= N / 3) killNow();
      },
    );
    const exit = await new Promise<number | null>((r) => first.proc.once('exit', (code, signal) => r(signal === 'SIGKILL' ? -9 : code)));
    assert.equal(exit, -9, 'heph died of SIGKILL');
    assert.ok(before && atKill);
    assert.ok(atKill.gotConfig.size >= N / 3 && atKill.gotConfig.size < N, `killed mid-storm (${atKill.gotConfig.size}/${N} configured)`);

    // Recovery happens in the next open (WAL replay); check the data before any machine can touch it again.
    const afterKill = snapshot(dbFile, false);
    for (const h of before.tokens.keys()) assert.ok(afterKill.tokens.has(h), 'a token committed before the kill survives');
    for (const id of before.audit) assert.ok(afterKill.audit.has(id), `audit row ${id} survives`);
    for (const id of before.machines) assert.ok(afterKill.machines.has(id), `machine ${id} survives`);
    for (const [ip, token] of atKill.seenToken) {
      // Absent only if a newer script for the same machine minted over it (a retry that raced the kill).
      const ok = afterKill.tokens.has(hashToken(token)) || [...afterKill.tokens.values()].some((t) => t.ip === ip);
      assert.ok(ok, `the token in ${ip}'s script is on disk`);
    }
    for (const ip of atKill.gotConfig) assert.ok((afterKill.served.get(ip) ?? 0) >= 1, `config.served audit row for ${ip}, whose config was received`);

    await Promise.race([outageSeen, new Promise((r) => setTimeout(r, 30_000).unref())]);
    heph = await spawnHeph(settings, { netns: lab.srv });
    const lines = await client.finished;
    const storm = lines.find((l): l is Extract<StormLine, { kind: 'storm' }> => l.kind === 'storm')!;
    const notDone = storm.results.filter((r) => !r.done).map((r) => `${r.m.ip}: ${r.failures.at(-1)?.message}`);
    assert.deepEqual(notDone, [], 'every machine completed');
    assert.ok(storm.results.some((r) => r.failures.length > 0), 'some machines saw the outage and retried');

    const end = snapshot(dbFile, true);
    for (const id of before.audit) assert.ok(end.audit.has(id));
    for (const id of before.machines) assert.ok(end.machines.has(id));
    assert.equal(end.machines.size, N, 'one machine row per machine, none duplicated by the restart');
    for (const r of storm.results) assert.ok((end.served.get(r.m.ip) ?? 0) >= 1, `${r.m.ip} has a config.served audit row`);
  });
});
