// The admin gRPC service with mutual TLS: a real grpc-js client, certificates from heph's own CA (src/pki), and
// refusals for a missing or foreign certificate.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { adminServiceDefinition, loadAdminProto, type AdminGrpcService } from '../../src/api/grpc.ts';
import { issueClientCert, loadOrCreateCA, type CA } from '../../src/pki/ca.ts';
import { apiHeph, type ApiHeph } from '../helpers/api.ts';
import { HEPH_BIN, REPO, tempDir } from '../helpers/heph.ts';

type Client = grpc.Client;
const Admin = grpc.makeGenericClientConstructor(adminServiceDefinition(loadAdminProto()), 'Admin');

function client(port: number, creds: grpc.ChannelCredentials): Client {
  return new Admin(`127.0.0.1:${port}`, creds) as unknown as Client;
}

type Method = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

function call(c: Client, method: string, req: unknown): Promise<any> {
  const m = (c as unknown as Record<string, Method>)[method]!.bind(c);
  return new Promise((resolve, reject) => m(req, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res))));
}

async function withCert(ca: CA, serverCa: CA, cn: string, organization: string | undefined): Promise<grpc.ChannelCredentials> {
  const c = await issueClientCert(ca, organization === undefined ? { commonName: cn } : { commonName: cn, organization });
  return grpc.credentials.createSsl(Buffer.from(serverCa.certPem), Buffer.from(c.keyPem), Buffer.from(c.certPem));
}

describe('admin gRPC with mutual TLS', () => {
  let h: ApiHeph;
  let ca: CA;
  let port: number;
  const clients: Client[] = [];
  const other = tempDir();
  const open = (creds: grpc.ChannelCredentials): Client => {
    const c = client(port, creds);
    clients.push(c);
    return c;
  };
  before(async () => {
    h = await apiHeph({ grpc: true });
    ca = await loadOrCreateCA(h.dir); // the CA heph made on start
    port = (h.daemon.services.find((s) => s.name === 'admin-grpc') as AdminGrpcService).port;
  });
  after(async () => {
    for (const c of clients) c.close();
    await h.stop();
    other.remove();
  });

  test('an operator certificate lists, accepts and updates; every change is audited with the certificate name', async () => {
    const { ctx } = h.daemon;
    const m = ctx.machines.resolve({ mac: '02:00:00:00:20:01', hostname: 'g1', ip: '192.0.2.21' }).machine;
    ctx.machines.resolve({ mac: '02:00:00:00:20:02', hostname: 'g2' });
    const c = open(await withCert(ca, ca, 'robot', 'heph:operator'));
    const list = await call(c, 'ListMachines', { query: 'g', limit: 10 });
    assert.equal(list.total, 2);
    assert.deepEqual(list.machines.map((x: { hostname: string }) => x.hostname), ['g1', 'g2']);
    assert.equal(list.machines[0].macs[0], '02:00:00:00:20:01');
    const accepted = await call(c, 'AcceptMachine', { id: m.id, reason: 'rack 4' });
    assert.equal(accepted.acceptance, 'accepted');
    const updated = await call(c, 'UpdateMachine', { id: m.id, hostname: 'worker-1', labels: { rack: 'r4' }, setLabels: true });
    assert.deepEqual([updated.hostname, updated.labels], ['worker-1', { rack: 'r4' }]);
    const explained = await call(c, 'ExplainProfile', { id: m.id });
    assert.equal(explained.profile, '');
    assert.match(explained.reason, /no selector matches/);
    const rows = ctx.db.prepare('SELECT actor, action, ip FROM audit WHERE machine_id = ? ORDER BY id').all(m.id);
    assert.deepEqual(rows, [
      { actor: 'cert:robot', action: 'machine.accept', ip: '127.0.0.1' },
      { actor: 'cert:robot', action: 'machine.update', ip: '127.0.0.1' },
    ]);
    const timeline = ctx.timeline.list(m.id).map((e) => e.message);
    assert.deepEqual(timeline, ['accepted by an operator: rack 4', 'hostname, labels changed']);
  });

  test('bad input and unknown machines get INVALID_ARGUMENT and NOT_FOUND, naming the field', async () => {
    const c = open(await withCert(ca, ca, 'robot2', 'heph:operator'));
    const m = h.daemon.ctx.machines.resolve({ mac: '02:00:00:00:20:03' }).machine;
    await assert.rejects(call(c, 'UpdateMachine', { id: m.id, hostname: 'Not A Hostname' }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /^hostname: /.test(e.details));
    await assert.rejects(call(c, 'UpdateMachine', { id: m.id, profile: 'nope' }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /^profile: no profile named/.test(e.details));
    await assert.rejects(call(c, 'ListMachines', { state: 'flying' }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /state/.test(e.details));
    await assert.rejects(call(c, 'ListMachines', { limit: 501 }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /limit/.test(e.details));
    await assert.rejects(call(c, 'GetMachine', { id: 'm-none' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    await assert.rejects(call(c, 'AcceptMachine', { id: 'm-none' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  });

  test('a read certificate reads but may not act; a certificate naming no scope gets nothing', async () => {
    const m = h.daemon.ctx.machines.resolve({ mac: '02:00:00:00:20:04' }).machine;
    const reader = open(await withCert(ca, ca, 'dashboard', 'heph:read'));
    assert.equal((await call(reader, 'GetMachine', { id: m.id })).id, m.id);
    await assert.rejects(call(reader, 'AcceptMachine', { id: m.id }), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED && /operator/.test(e.details));
    await assert.rejects(call(reader, 'DeleteMachine', { id: m.id }), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
    const noScope = open(await withCert(ca, ca, 'someone', undefined));
    await assert.rejects(call(noScope, 'ListMachines', {}), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED && /names no heph scope/.test(e.details));
    assert.equal(h.daemon.ctx.machines.get(m.id)!.acceptance, 'pending');
  });

  test('no client certificate, or one from another CA, fails the TLS handshake', async () => {
    const foreign = await loadOrCreateCA(other.path);
    const noCert = open(grpc.credentials.createSsl(Buffer.from(ca.certPem)));
    await assert.rejects(call(noCert, 'ListMachines', {}), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
    const untrusted = open(await withCert(foreign, ca, 'intruder', 'heph:admin'));
    await assert.rejects(call(untrusted, 'ListMachines', {}), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
    const plaintext = open(grpc.credentials.createInsecure());
    await assert.rejects(call(plaintext, 'ListMachines', {}), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
    // openssl agrees: without a certificate the server ends the handshake with "certificate required".
    // (asynchronously: the server runs in this process and must keep answering)
    const out = await new Promise<string>((resolve) => {
      // stdin stays open, so s_client waits for the server's verdict instead of leaving at once.
      const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', join(h.dir, 'pki/ca.crt'), '-alpn', 'h2', '-verify_return_error'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let text = '';
      p.stdout.on('data', (d: Buffer) => (text += d.toString()));
      p.stderr.on('data', (d: Buffer) => (text += d.toString()));
      const t = setTimeout(() => p.kill(), 10_000);
      p.on('close', () => (clearTimeout(t), resolve(text)));
    });
    assert.match(out, /certificate required|alert number 116/);
    assert.match(out, /Verify return code: 0 \(ok\)/, 'the server certificate chains to heph\'s CA');
    assert.equal(h.daemon.ctx.db.prepare("SELECT count(*) FROM audit WHERE actor = 'cert:intruder'").pluck().get(), 0);
  });

  test('heph admin-cert create issues a working certificate into 0600 files', async () => {
    const out = join(other.path, 'certs');
    const r = spawnSync(process.execPath, [HEPH_BIN, 'admin-cert', 'create', '--name', 'ci-bot', '--scope', 'operator', '--out', out, '--days', '30', '--set', `dataDir=${h.dir}`], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(join(out, 'ci-bot.key')).mode & 0o777, 0o600);
    const creds = grpc.credentials.createSsl(readFileSync(join(out, 'ca.crt')), readFileSync(join(out, 'ci-bot.key')), readFileSync(join(out, 'ci-bot.crt')));
    const c = open(creds);
    const m = h.daemon.ctx.machines.resolve({ mac: '02:00:00:00:20:05' }).machine;
    assert.equal((await call(c, 'ReprovisionMachine', { id: m.id })).reprovision, true);
    const issued = h.daemon.ctx.db.prepare("SELECT detail FROM audit WHERE action = 'cert.issue'").pluck().get() as string;
    assert.equal(JSON.parse(issued).cn, 'ci-bot');
    const bad = spawnSync(process.execPath, [HEPH_BIN, 'admin-cert', 'create', '--name', 'x', '--scope', 'root', '--out', out, '--set', `dataDir=${h.dir}`], { cwd: REPO, encoding: 'utf8' });
    assert.equal(bad.status, 2);
  });
});
