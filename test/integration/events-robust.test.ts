import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startDaemon, type Daemon } from '../../src/daemon.ts';
import type { EventsService } from '../../src/events/index.ts';
import { createLogger } from '../../src/log.ts';
import { tempDir, testSettings } from '../helpers/heph.ts';
import { eventRequest, grpcFrame, xids } from '../helpers/talos-events.ts';

const run = promisify(execFile);

async function daemonAt(dir: string): Promise<{ daemon: Daemon; port: number }> {
  const settings = testSettings(dir);
  const daemon = await startDaemon(settings, createLogger(settings));
  return { daemon, port: (daemon.services.find((s) => s.name === 'events') as EventsService).sink.port };
}

async function publish(port: number, source: string, body: Buffer, dir: string): Promise<string> {
  const file = join(dir, `req-${Math.random()}.bin`);
  writeFileSync(file, body);
  const { stdout } = await run('curl', ['-sS', '--http2-prior-knowledge', '--interface', source, '-X', 'POST', '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--data-binary', `@${file}`, '-D', '-', '-o', '/dev/null', `http://127.0.0.1:${port}/events.EventSinkService/Publish`]);
  return stdout;
}

test('a replay after heph restarted is still recognised by the ids kept in the database', async () => {
  const dir = tempDir();
  try {
    const [id] = xids(1);
    const body = grpcFrame(eventRequest(['PhaseEvent', 'phase: "install"'], id!));
    const a = await daemonAt(dir.path);
    const { machine } = a.daemon.ctx.machines.resolve({ mac: '52:54:00:00:01:02', ip: '127.0.0.2' });
    assert.match(await publish(a.port, '127.0.0.2', body, dir.path), /grpc-status: 0/);
    await a.daemon.stop();

    const b = await daemonAt(dir.path);
    try {
      b.daemon.ctx.machines.setState(machine.id, 'installed', 'marker');
      assert.match(await publish(b.port, '127.0.0.2', body, dir.path), /grpc-status: 0/);
      b.daemon.ctx.writer.flush();
      assert.equal(b.daemon.ctx.machines.get(machine.id)!.stateReason, 'marker', 'the replayed phase did not move the machine back');
      assert.equal((b.daemon.ctx.db.prepare('SELECT count(*) AS n FROM talos_events WHERE event_id = ?').get(id) as { n: number }).n, 1);
      assert.match(await b.daemon.ctx.metrics.getSingleMetricAsString('heph_talos_events_duplicate_total'), /heph_talos_events_duplicate_total 1$/m);
    } finally {
      await b.daemon.stop();
    }
  } finally {
    dir.remove();
  }
});

test('garbage on the gRPC port (HTTP/1.1, random bytes, a reset mid-frame) does not stop the sink', async () => {
  const dir = tempDir();
  const { daemon, port } = await daemonAt(dir.path);
  try {
    const send = (bytes: Buffer): Promise<void> =>
      new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port }, () => s.end(bytes));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    await send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await send(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)));
    await send(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0xff, 0, 0, 0, 0, 0, 1])]));
    // A client that gives up half way through its request body.
    const body = grpcFrame(eventRequest(['PhaseEvent', 'phase: "env"'], xids(1)[0]!));
    await publish(port, '127.0.0.3', body.subarray(0, 7), dir.path).catch(() => '');
    assert.match(await publish(port, '127.0.0.3', body, dir.path), /grpc-status: 0/);
    assert.equal(daemon.services.find((s) => s.name === 'events')!.health().state, 'up');
  } finally {
    await daemon.stop();
    dir.remove();
  }
});
