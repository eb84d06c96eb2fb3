// The data dir's disk fills up under a running `heph serve` (a small tmpfs mounted as the data dir): the daemon
// keeps answering, /healthz says degraded and why, nothing crashes, and when space returns the buffered writes
// land and /healthz is ok again. Unit-level behaviour of the write-behind is in inventory-diskfull.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { DB_FILE } from '../../src/inventory/db.ts';
import { spawnHeph, tempDir, type HephProcess } from '../helpers/heph.ts';
import { canMount } from '../helpers/system.ts';

/** The port heph's HTTP server bound (settings say 0), from its "heph is up" line. */
let port = 0;


function get(path: string, from = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: from, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const script = (i: number): string => `/ipxe?${new URLSearchParams({ mac: `52-54-00-00-${(i >> 8).toString(16).padStart(2, '0')}-${(i & 255).toString(16).padStart(2, '0')}`, arch: 'x86_64', platform: 'efi', hostname: `full-${i}` })}`;

describe('faults: the data dir disk fills up', { skip: canMount() ? false : 'needs root to mount a small tmpfs' }, () => {
  const mnt = tempDir('heph-full-');
  let heph: HephProcess | undefined;
  after(async () => {
    await heph?.stop();
    try {
      execFileSync('umount', ['-l', mnt.path]);
    } catch {
      // Not mounted (the test failed before mounting).
    }
    mnt.remove();
  });

  test('degraded while full, no crash, everything buffered lands when space returns', { timeout: 240_000 }, async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt.path]);
    const dataDir = join(mnt.path, 'data');
    mkdirSync(dataDir);
    heph = await spawnHeph({ dataDir, http: { listen: '127.0.0.1', port: 0 }, grpc: { listen: '127.0.0.1', port: 0 }, kmsg: { listen: '127.0.0.1', port: 0 }, api: { enabled: false, grpc: { enabled: false } } });
    const up = heph.logs.find((l) => l.msg === 'heph is up') as { services: { http: { listening: { tcp: string } }; events: { listening: { kmsgTcp: string } } } };
    port = Number(up.services.http.listening.tcp.split(':')[1]);
    // Kernel-log lines are pure write-behind traffic: when the disk is full they wait in the buffer. (A script request
    // also commits inline; once that fails it answers 500 and buffers nothing.)
    const kmsg = connect(Number(up.services.events.listening.kmsgTcp.split(':')[1]), '127.0.0.1');
    await new Promise((r) => kmsg.once('connect', r));
    let seq = 0;
    const kernelLines = (n: number): void => {
      for (let k = 0; k < n; k++) kmsg.write(`${JSON.stringify({ msg: `disk-full test line ${seq} ${'x'.repeat(400)}`, seq: seq++ })}\n`);
    };
    assert.equal((await get('/healthz')).status, 200);
    // Machines exist before the disk fills; what follows are sightings and timeline events (write-behind).
    for (let i = 0; i < 20; i++) assert.equal((await get(script(i))).status, 200);

    // Empty the WAL first: SQLite reuses the space a checkpointed WAL already holds, so without this the "full"
    // disk could take any number of writes before one needed a new block.
    const side = new Database(join(dataDir, DB_FILE));
    try {
      // heph may be committing at that instant (busy): try again shortly.
      let result: unknown;
      for (let i = 0; i < 50; i++) {
        result = side.pragma('wal_checkpoint(TRUNCATE)');
        if ((result as { busy: number }[])[0]?.busy === 0) break;
        await sleep(50);
      }
      assert.deepEqual(result, [{ busy: 0, log: 0, checkpointed: 0 }]);
    } finally {
      side.close();
    }
    const filler = join(mnt.path, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(8 * 1024 * 1024));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    // Keep the machines asking (each request buffers timeline rows) until the writer reports the disk full. SQLite
    // first reuses space it already holds (a checkpointed WAL, free pages), so how long that takes varies: a few new
    // machines per round make the database grow for sure, and the loop is bounded by time, not by a round count.
    const statuses = new Map<number, number>();
    let health = await get('/healthz');
    const until = Date.now() + 60_000;
    for (let round = 0; Date.now() < until && health.status === 200; round++) {
      for (const i of [...Array.from({ length: 20 }, (_, k) => k), ...Array.from({ length: 5 }, (_, k) => 1000 + round * 5 + k)]) {
        const r = await get(script(i));
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
      kernelLines(50);
      await sleep(60);
      health = await get('/healthz');
    }
    assert.equal(health.status, 503, `/healthz reports the full disk (${health.body})`);
    const body = JSON.parse(health.body) as { status: string; services: { database: { state: string; detail: string; pendingWrites: number } } };
    assert.equal(body.status, 'degraded');
    assert.equal(body.services.database.state, 'degraded');
    assert.match(body.services.database.detail, /SQLITE_FULL|full/i);
    assert.ok(body.services.database.pendingWrites > 0);
    // Requests during the outage got answers (a script, or a 5xx when an inline write could not commit), never a reset.
    for (const s of statuses.keys()) assert.ok(s === 200 || s >= 500, `status ${s}`);
    assert.equal(heph.proc.exitCode, null, 'heph is still running');
    const pending = body.services.database.pendingWrites;
    const bufferedRows = (): number => {
      const db = new Database(join(dataDir, DB_FILE), { readonly: true });
      try {
        return (db.prepare('SELECT (SELECT count(*) FROM timeline) + (SELECT count(*) FROM kmsg) AS n').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const committedWhileFull = bufferedRows();

    kmsg.end();
    rmSync(filler);
    let ok = false;
    // The write-behind backs off (doubling, up to 30 s) while the disk stays full: allow one full backoff.
    for (let i = 0; i < 300 && !ok; i++) {
      await sleep(200);
      const h = await get('/healthz');
      ok = h.status === 200 && (JSON.parse(h.body) as { services: { database: { pendingWrites: number } } }).services.database.pendingWrites === 0;
    }
    assert.ok(ok, '/healthz is ok again and the buffered writes were flushed');
    assert.equal((await get(script(0))).status, 200);
    assert.equal(heph.proc.exitCode, null);
    await heph.stop();
    heph = undefined;

    const db = new Database(join(dataDir, DB_FILE), { readonly: true });
    try {
      assert.equal(db.pragma('quick_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
    const rows = bufferedRows();
    assert.ok(rows >= committedWhileFull + pending, `the ${pending} writes pending during the outage landed (${committedWhileFull} → ${rows} timeline and kernel-log rows)`);
  });
});
