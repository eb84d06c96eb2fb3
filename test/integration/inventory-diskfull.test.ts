import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openInventory } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { Timeline } from '../../src/inventory/timeline.ts';
import { WriteBehind } from '../../src/inventory/writebehind.ts';
import { inProcessHeph, tempDir } from '../helpers/heph.ts';
import { canMount } from '../helpers/system.ts';


describe('inventory on a full disk', { skip: canMount() ? false : 'needs root to mount a small tmpfs' }, () => {
  it('keeps buffered writes while the disk is full, reports it, and saves them when space returns', () => {
    const mnt = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt.path]);
    const filler = join(mnt.path, 'filler');
    let db: ReturnType<typeof openInventory>['db'] | undefined;
    try {
      const opened = openInventory(join(mnt.path, 'data'));
      db = opened.db;
      const errors: unknown[] = [];
      const writer = new WriteBehind(db, { tickMs: 1_000_000, retryMs: 1_000_000, onError: (e) => errors.push(e) });
      const timeline = new Timeline(db, writer);
      const { machine } = new Machines(db).resolve({ mac: 'aa:bb:cc:00:00:01' });
      // Fill every free byte, then ask for more than the WAL can hold.
      try {
        writeFileSync(filler, Buffer.alloc(8 * 1024 * 1024));
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      }
      const big = 'x'.repeat(2000);
      for (let i = 0; i < 500; i++) timeline.append({ machineId: machine.id, kind: 'test.event', source: 'system', message: `event ${i}`, data: { pad: big } });
      writer.flush();
      assert.match(writer.stalled ?? '', /^SQLITE_FULL/);
      assert.equal(writer.pending, 500);
      assert.ok(errors.length >= 1);
      // Space returns: the same writes go through, none lost, and the file is sound.
      rmSync(filler);
      writer.flush();
      assert.equal(writer.stalled, undefined);
      assert.equal(writer.pending, 0);
      assert.equal(timeline.list(machine.id, { limit: 10_000 }).length, 500);
      assert.equal(db.pragma('quick_check', { simple: true }), 'ok');
      writer.close();
    } finally {
      db?.close();
      execFileSync('umount', ['-l', mnt.path]);
      mnt.remove();
    }
  });

  it('an inline write that hits the full disk answers 500 and turns /healthz degraded, with nothing buffered', async () => {
    const mnt = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt.path]);
    const filler = join(mnt.path, 'filler');
    const heph = await inProcessHeph({ dataDir: join(mnt.path, 'data') });
    try {
      const health = async (): Promise<{ status: number; body: { services: { database: { state: string; detail?: string } } } }> => {
        const r = await fetch(`${heph.url}/healthz`);
        return { status: r.status, body: (await r.json()) as never };
      };
      assert.equal((await health()).status, 200);
      const db = heph.daemon.ctx.db;
      db.pragma('wal_checkpoint(TRUNCATE)');
      try {
        writeFileSync(filler, Buffer.alloc(8 * 1024 * 1024));
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      }
      // New machines, each an inline insert, until one no longer fits.
      let status = 200;
      for (let i = 0; i < 2000 && status === 200; i++) {
        const mac = `52-54-00-ee-${((i >> 8) & 0xff).toString(16).padStart(2, '0')}-${(i & 0xff).toString(16).padStart(2, '0')}`;
        status = (await fetch(`${heph.url}/ipxe?mac=${mac}&arch=x86_64&platform=efi&hostname=${'h'.repeat(200)}${i}`)).status;
      }
      assert.equal(status, 500, 'a new machine could not be recorded');
      assert.equal(heph.daemon.ctx.writer.pending, 0, 'the failure was inline, not a buffered write');
      const degraded = await health();
      assert.equal(degraded.status, 503);
      assert.equal(degraded.body.services.database.state, 'degraded');
      assert.match(degraded.body.services.database.detail ?? '', /SQLITE_FULL/);
      // Space returns: machines are recorded again, and the report clears once the failure is old news.
      rmSync(filler);
      assert.equal((await fetch(`${heph.url}/ipxe?mac=52-54-00-ee-ff-ff&arch=x86_64&platform=efi`)).status, 200);
      assert.equal(heph.daemon.ctx.writer.diskProblem(Date.now() + 31_000), undefined);
      assert.equal(db.pragma('quick_check', { simple: true }), 'ok');
    } finally {
      await heph.stop();
      execFileSync('umount', ['-l', mnt.path]);
      mnt.remove();
    }
  });
});
