import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { EventsService } from '../../src/events/index.ts';
import { HEPH_BIN, inProcessHeph, REPO } from '../helpers/heph.ts';
import { eventually } from '../helpers/wait.ts';
import { BOOT_RUN, eventRequest, EXPECTED_STATES, grpcFrame, INSTALL_RUN, protocEncode, xids, type Step } from '../helpers/talos-events.ts';

const run = promisify(execFile);
let heph: Awaited<ReturnType<typeof inProcessHeph>>;
let events: EventsService;

before(async () => {
  heph = await inProcessHeph({ kmsg: { keepPerMachine: 100 } });
  events = heph.daemon.services.find((s) => s.name === 'events') as EventsService;
  assert.equal(events.health().state, 'up');
});
after(async () => {
  await heph.stop();
});

const ctx = (): typeof heph.daemon.ctx => heph.daemon.ctx;

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${heph.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Rows after the write-behind queue is flushed. */
function count(table: string, where = '1', ...args: unknown[]): number {
  ctx().writer.flush();
  return (ctx().db.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).get(...args) as { n: number }).n;
}

/** A TCP relay that dials heph from `localAddress`, so the daemon sees that peer IP, as it would see a machine's. */
async function relay(localAddress: string, port: number): Promise<{ port: number; close(): void }> {
  const srv: Server = createServer((c) => {
    const up = connect({ host: '127.0.0.1', port, localAddress });
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as { port: number }).port, close: () => srv.close() };
}

function grpcClient(port: number): { publish(req: Record<string, unknown>): Promise<void>; close(): void } {
  const def = loadSync(join(REPO, 'proto/events/events.proto'), { includeDirs: [join(REPO, 'proto')], keepCase: true });
  const Sink = (grpc.loadPackageDefinition(def).events as grpc.GrpcObject).EventSinkService as grpc.ServiceClientConstructor;
  const client = new Sink(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    publish: (req) => new Promise((resolve, reject) => client.Publish!(req, (err: grpc.ServiceError | null) => (err ? reject(err) : resolve()))),
    close: () => client.close(),
  };
}

/** What Talos sends for one step: an Any whose value protoc encoded. */
function anyOf([type, text]: Step): { type_url: string; value: Buffer } {
  return { type_url: `type.googleapis.com/machine.${type}`, value: protocEncode(`machine.${type}`, text) };
}

test('grpc-js client from 127.0.0.2: a full install drives the machine to ready; a replay changes nothing; unknown types are acknowledged', async () => {
  const { machine } = ctx().machines.resolve({ mac: '52:54:00:00:00:02', ip: '127.0.0.2' });
  ctx().machines.setState(machine.id, 'config-served', 'config served');
  const r = await relay('127.0.0.2', events.sink.port);
  const client = grpcClient(r.port);
  try {
    const steps = [...INSTALL_RUN, ...BOOT_RUN];
    const ids = xids(steps.length);
    // Talos sends one unary call at a time, in order.
    for (const [i, s] of steps.entries()) await client.publish({ data: anyOf(s), id: ids[i], actor_id: '' });
    ctx().writer.flush();
    const m = ctx().machines.get(machine.id)!;
    assert.equal(m.state, 'ready');
    assert.match(m.stateReason ?? '', /Ready in Kubernetes/);
    assert.equal(m.hostname, 'talos-w1'); // from the AddressEvent
    const timeline = ctx().timeline.list(machine.id);
    assert.deepEqual(timeline.filter((e) => e.kind === 'talos.state').map((e) => (e.data as { to: string }).to), EXPECTED_STATES);
    assert.ok(timeline.every((e) => e.source === 'events' && e.kind.startsWith('talos.')));
    assert.ok(timeline.some((e) => e.kind === 'talos.phase' && e.message === 'phase install started'));
    assert.ok(timeline.some((e) => e.kind === 'talos.sequence' && e.message.includes('unix.Reboot(45584543)')));
    assert.ok(!timeline.some((e) => e.kind === 'talos.task'), 'tasks stay off the timeline');
    assert.equal(count('talos_events', 'machine_id = ?', machine.id), steps.length);

    // Talos reconnects and replays its buffer: same ids, nothing new.
    const before = { rows: count('talos_events'), timeline: count('timeline'), dup: await metric('heph_talos_events_duplicate_total') };
    ctx().machines.setState(machine.id, 'ready', 'marker'); // a replayed event would overwrite this reason
    for (const [i, s] of steps.entries()) await client.publish({ data: anyOf(s), id: ids[i], actor_id: '' });
    ctx().writer.flush();
    assert.equal(count('talos_events'), before.rows);
    assert.equal(count('timeline'), before.timeline);
    assert.equal(ctx().machines.get(machine.id)!.stateReason, 'marker');
    assert.equal((await metric('heph_talos_events_duplicate_total')) - before.dup, steps.length);

    // A type heph does not decode: OK to Talos, counted, kept.
    const unknownBefore = await metric('heph_talos_events_total', '{type="unknown"}');
    await client.publish({ data: { type_url: 'type.googleapis.com/machine.ConfigValidationErrorEvent', value: Buffer.from('0a03626164', 'hex') }, id: xids(1)[0], actor_id: 'a1' });
    assert.equal((await metric('heph_talos_events_total', '{type="unknown"}')) - unknownBefore, 1);
    ctx().writer.flush();
    assert.equal(count('talos_events', "type = 'machine.ConfigValidationErrorEvent' AND machine_id = ?", machine.id), 1);
  } finally {
    client.close();
    r.close();
  }
});

/** POSTs gRPC frames over h2c with curl from `source`; returns the response headers and trailers. */
async function curlPublish(source: string, body: Buffer): Promise<string> {
  const file = join(heph.dir, `req-${Math.random()}.bin`);
  writeFileSync(file, body);
  const { stdout } = await run('curl', [
    '-sS', '--http2-prior-knowledge', '--interface', source, '-X', 'POST',
    '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--data-binary', `@${file}`,
    '-D', '-', '-o', '/dev/null', `http://127.0.0.1:${events.sink.port}/events.EventSinkService/Publish`,
  ]);
  return stdout;
}

test('curl over h2c with protoc-encoded frames: an unknown IP is kept, a config error fails a machine, garbage is refused and counted', async () => {
  // Unknown IP: kept with machine_id NULL, shown by `heph events`.
  const [idA, idB, idC] = xids(3);
  const h = await curlPublish('127.0.0.3', grpcFrame(eventRequest(['SequenceEvent', 'sequence: "boot" action: START'], idA!)));
  assert.match(h, /grpc-status: 0/);
  assert.equal(count('talos_events', "ip = '127.0.0.3' AND machine_id IS NULL AND event_id = ?", idA), 1);
  assert.equal(count('timeline', "ip = '127.0.0.3'"), 0, 'the per-machine timeline gets no unidentified rows');
  const cli = await run(process.execPath, [HEPH_BIN, 'events', '--machine', '127.0.0.3', '--set', `dataDir=${heph.dir}`], { cwd: REPO });
  assert.match(cli.stdout, /- 127\.0\.0\.3 {2}sequence boot started/);

  // A known machine whose config does not load: failed, with Talos's message.
  const { machine } = ctx().machines.resolve({ mac: '52:54:00:00:00:04', ip: '127.0.0.4' });
  const h2 = await curlPublish('127.0.0.4', grpcFrame(eventRequest(['ConfigLoadErrorEvent', 'error: "failed to parse config: unknown keys found during decoding"'], idB!)));
  assert.match(h2, /grpc-status: 0/);
  const m = ctx().machines.get(machine.id)!;
  assert.equal(m.state, 'failed');
  assert.equal(m.stateReason, 'Talos could not load its config: failed to parse config: unknown keys found during decoding');

  // Not an EventRequest: INVALID_ARGUMENT, counted, and the sink keeps serving.
  const malformedBefore = await metric('heph_talos_events_malformed_total', '{what="request"}');
  const bad = await curlPublish('127.0.0.4', grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff])));
  assert.match(bad, /grpc-status: 3/);
  assert.equal((await metric('heph_talos_events_malformed_total', '{what="request"}')) - malformedBefore, 1);
  // A frame whose length prefix lies: grpc-js refuses it; the daemon lives on.
  const lying = Buffer.from([0, 0, 0, 0, 50, 1, 2, 3]);
  assert.doesNotMatch(await curlPublish('127.0.0.4', lying), /grpc-status: 0/);
  // A payload that is not the type it claims: acknowledged (Talos would resend it forever) and counted.
  const undecodable = protocEncode('events.EventRequest', `data { type_url: "type.googleapis.com/machine.SequenceEvent" value: "\\n\\x09x" } id: "${idC}"`);
  assert.match(await curlPublish('127.0.0.4', grpcFrame(undecodable)), /grpc-status: 0/);
  assert.equal(await metric('heph_talos_events_malformed_total', '{what="payload"}'), 1);
  assert.match(await curlPublish('127.0.0.4', grpcFrame(eventRequest(['PhaseEvent', 'phase: "install"'], xids(1)[0]!))), /grpc-status: 0/);
  assert.equal(ctx().machines.get(machine.id)!.state, 'installing');
});

test('an AddressEvent from a new IP names the machine by one of its addresses and moves it there', async () => {
  const { machine } = ctx().machines.resolve({ mac: '52:54:00:00:00:05', ip: '192.0.2.50' });
  const [a, b] = xids(2);
  assert.match(await curlPublish('127.0.0.5', grpcFrame(eventRequest(['AddressEvent', 'hostname: "cp1" addresses: "192.0.2.50/24"'], a!))), /grpc-status: 0/);
  const m = ctx().machines.get(machine.id)!;
  assert.equal(m.lastIp, '127.0.0.5');
  assert.equal(m.hostname, 'cp1');
  assert.match(await curlPublish('127.0.0.5', grpcFrame(eventRequest(['PhaseEvent', 'phase: "install"'], b!))), /grpc-status: 0/);
  assert.equal(ctx().machines.get(machine.id)!.state, 'installing');
  ctx().writer.flush();
  assert.equal(count('talos_events', 'machine_id = ?', machine.id), 2);
});

test('kernel log over TCP and UDP: stored per machine, bounded, malformed lines dropped and counted', async () => {
  const { machine } = ctx().machines.resolve({ mac: '52:54:00:00:00:06', ip: '127.0.0.6' });
  const line = (i: number): string => `${JSON.stringify({ clock: i * 1000, facility: 'kern', msg: `line ${i}\n`, priority: 'info', seq: i, 'talos-level': 'info', 'talos-time': '2026-11-22T04:00:00Z' })}\n`;
  const droppedBefore = {
    json: await metric('heph_kmsg_dropped_total', '{proto="tcp",reason="not_json"}'),
    long: await metric('heph_kmsg_dropped_total', '{proto="tcp",reason="too_long"}'),
  };
  const stream = Buffer.from(
    Array.from({ length: 250 }, (_, i) => line(i + 1)).join('') + '{"msg": broken\n' + `{"msg":"${'x'.repeat(70_000)}"}\n` + '[1]\n' + line(251),
  );
  const sock = connect({ host: '127.0.0.1', port: events.kmsg.tcpPort, localAddress: '127.0.0.6' });
  await new Promise<void>((r) => sock.once('connect', r));
  // Odd chunk sizes so lines straddle writes.
  for (let at = 0; at < stream.length; at += 777) sock.write(stream.subarray(at, at + 777));
  await eventually(() => (count('kmsg', "machine_id = ? AND msg = 'line 251'", machine.id) === 1 ? true : undefined), 'the last TCP line');
  sock.end();
  ctx().writer.flush();
  // keepPerMachine is 100: the oldest lines are gone, the newest 100 (±the trim period) are there.
  const kept = count('kmsg', 'machine_id = ?', machine.id);
  assert.ok(kept >= 100 && kept <= 110, `kept ${kept}`);
  assert.equal(count('kmsg', "machine_id = ? AND msg = 'line 1'", machine.id), 0);
  assert.equal((await metric('heph_kmsg_dropped_total', '{proto="tcp",reason="not_json"}')) - droppedBefore.json, 1);
  assert.equal((await metric('heph_kmsg_dropped_total', '{proto="tcp",reason="too_long"}')) - droppedBefore.long, 1);
  assert.equal(await metric('heph_kmsg_dropped_total', '{proto="tcp",reason="not_object"}'), 1);

  // UDP, from an IP no machine has: kept under the IP.
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.7', r));
  for (const d of [line(1), 'not json', `${line(2)}${line(3)}`]) await new Promise<void>((r, j) => udp.send(d, events.kmsg.udpPort, '127.0.0.1', (e) => (e ? j(e) : r())));
  udp.close();
  await eventually(() => (count('kmsg', "ip = '127.0.0.7' AND machine_id IS NULL") === 3 ? true : undefined), 'three UDP lines');
  assert.equal(await metric('heph_kmsg_dropped_total', '{proto="udp",reason="not_json"}'), 1);

  const cli = await run(process.execPath, [HEPH_BIN, 'kmsg', '52:54:00:00:00:06', '-n', '2', '--set', `dataDir=${heph.dir}`], { cwd: REPO });
  assert.deepEqual(cli.stdout.trim().split('\n'), ['2026-11-22T04:00:00Z info    line 250', '2026-11-22T04:00:00Z info    line 251']);
  const cliUdp = await run(process.execPath, [HEPH_BIN, 'kmsg', '127.0.0.7', '--json', '--set', `dataDir=${heph.dir}`], { cwd: REPO });
  assert.deepEqual(cliUdp.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string; seq: number }).seq), [1, 2, 3]);
});

test('a port in use stops startup with the setting to change, for the gRPC sink and for the kernel-log UDP socket', async () => {
  const tcp = createServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  try {
    await assert.rejects(inProcessHeph({ grpc: { port: (tcp.address() as { port: number }).port } }), (e: Error & { hint?: string }) => {
      assert.equal(e.name, 'StartupError');
      assert.match(e.message, /^events: cannot listen on TCP 127\.0\.0\.1:\d+: the port is already in use/);
      assert.match(e.hint ?? '', /grpc\.port/);
      return true;
    });
    await assert.rejects(inProcessHeph({ kmsg: { port: udp.address().port } }), (e: Error & { hint?: string }) => {
      assert.match(e.message, /^events: cannot listen on UDP 127\.0\.0\.1:\d+: the port is already in use/);
      assert.match(e.hint ?? '', /kmsg\.port/);
      return true;
    });
  } finally {
    tcp.close();
    udp.close();
  }
});
