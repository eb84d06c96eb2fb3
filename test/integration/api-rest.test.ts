import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { composeApi, INITIAL_TOKEN_FILE } from '../../src/api/index.ts';
import { Sessions } from '../../src/api/sessions.ts';
import { Tokens } from '../../src/api/tokens.ts';
import type { HttpService } from '../../src/http/server.ts';
import { audit } from '../../src/inventory/audit.ts';
import { apiHeph, type ApiHeph } from '../helpers/api.ts';

/** A raw HTTP request, so Host and the fetch-metadata headers are exactly what the test says. */
function raw(url: string, opts: { method?: string; path: string; headers: Record<string, string>; body?: string }): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, setHost: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const SECRET_BASE = 'version: v1alpha1\nmachine:\n  type: worker\n  token: bootstrap-secret\n';
const spec = (): Record<string, unknown> => ({ talosVersion: 'v1.13.9', baseInline: SECRET_BASE });

describe('REST /api/v1', () => {
  let h: ApiHeph;
  before(async () => {
    h = await apiHeph();
  });
  after(async () => {
    await h.stop();
  });
  /** What an inject() request to the admin API carries: the listener's Host, a token, a JSON body. */
  const injectHeaders = (token: string): Record<string, string> => ({ host: new URL(h.url).host, authorization: `Bearer ${token}`, 'content-type': 'application/json' });

  test('the first admin token is in a 0600 file in the data dir and works', async () => {
    const st = statSync(join(h.dir, INITIAL_TOKEN_FILE));
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(h.admin, /^heph_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    const r = await h.call('GET', '/api/v1/session');
    assert.equal(r.status, 200);
    assert.deepEqual([r.body.name, r.body.scope, r.body.csrfToken], ['initial-admin', 'admin', null]);
  });

  test('401 without a token, with a malformed, unknown, forged or revoked token', async () => {
    const forged = h.admin.slice(0, -4) + (h.admin.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    for (const token of [undefined, 'nope', 'heph_000000000000_' + 'A'.repeat(43), forged]) {
      const r = await h.call('GET', '/api/v1/machines', { token });
      assert.equal(r.status, 401, `token ${String(token)}`);
      assert.equal(r.body.error.code, 'unauthorized');
      assert.equal(typeof r.body.error.message, 'string');
    }
    const t = await h.call('POST', '/api/v1/tokens', { body: { name: 'short-lived', scope: 'read' } });
    assert.equal(t.status, 201);
    assert.equal((await h.call('GET', '/api/v1/machines', { token: t.body.token })).status, 200);
    assert.equal((await h.call('DELETE', `/api/v1/tokens/${t.body.record.id}`)).status, 204);
    assert.equal((await h.call('GET', '/api/v1/machines', { token: t.body.token })).status, 401);
    assert.equal((await h.call('DELETE', `/api/v1/tokens/${t.body.record.id}`)).status, 404);
  });

  test('scopes: read reads, operator operates, only admin manages tokens and reads the audit', async () => {
    const read = h.token('read');
    const op = h.token('operator');
    const m = h.daemon.ctx.machines.resolve({ mac: '02:00:00:00:10:01' }).machine;
    assert.equal((await h.call('GET', `/api/v1/machines/${m.id}`, { token: read })).status, 200);
    const denied = await h.call('POST', `/api/v1/machines/${m.id}/accept`, { token: read, body: {} });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'forbidden');
    assert.match(denied.body.error.message, /operator/);
    assert.equal((await h.call('POST', `/api/v1/machines/${m.id}/accept`, { token: op, body: {} })).status, 200);
    assert.equal((await h.call('GET', '/api/v1/tokens', { token: op })).status, 403);
    assert.equal((await h.call('POST', '/api/v1/tokens', { token: op, body: { name: 'x', scope: 'admin' } })).status, 403);
    assert.equal((await h.call('GET', '/api/v1/audit', { token: op })).status, 403);
    const list = await h.call('GET', '/api/v1/tokens');
    assert.equal(list.status, 200);
    assert.ok(list.body.items.length >= 3);
    assert.ok(!JSON.stringify(list.body).includes(h.admin.slice(-43)), 'token list never carries a secret');
    assert.ok(list.body.items.every((t: Record<string, unknown>) => !('hash' in t) && !('token' in t)));
  });

  test('a bad body is 400 naming the field; unknown fields are refused, not dropped', async () => {
    const m = h.daemon.ctx.machines.resolve({ mac: '02:00:00:00:10:02' }).machine;
    const cases: [unknown, RegExp][] = [
      [{ hostname: 'UPPER_and space' }, /^hostname: /],
      [{ labels: { rack: 7 } }, /^labels\.rack: /],
      [{ labels: 'rack=1' }, /^labels: /],
      [{ dataDir: '/etc' }, /^dataDir: is not a known field/],
      [{}, /must NOT have fewer than 1 properties/],
      [{ profile: 'does-not-exist' }, /^profile: no profile named/],
    ];
    for (const [body, msg] of cases) {
      const r = await h.call('PATCH', `/api/v1/machines/${m.id}`, { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, 'bad_request');
      assert.match(r.body.error.message, msg);
    }
    const notJson = await h.call('PATCH', `/api/v1/machines/${m.id}`, { body: '{"hostname":', headers: { 'content-type': 'application/json' } });
    assert.equal(notJson.status, 400);
    assert.ok(notJson.body.error.message);
    const missing = await h.call('POST', '/api/v1/tokens', { body: { scope: 'read' } });
    assert.equal(missing.status, 400);
    assert.match(missing.body.error.message, /^name: /);
    const badScope = await h.call('POST', '/api/v1/tokens', { body: { name: 'x', scope: 'root' } });
    assert.match(badScope.body.error.message, /^scope: /);
    const badQuery = await h.call('GET', '/api/v1/machines?limit=0');
    assert.equal(badQuery.status, 400);
    assert.match(badQuery.body.error.message, /^querystring limit: /);
    assert.equal((await h.call('GET', '/api/v1/machines?state=nonsense')).status, 400);
    assert.equal((await h.call('GET', '/api/v1/machines?foo=1')).status, 400);
    const unknownRoute = await h.call('GET', '/api/v1/nothing-here');
    assert.equal(unknownRoute.status, 404);
    assert.equal(unknownRoute.body.error.code, 'not_found');
  });

  test('patch, accept, reject, reprovision and delete each leave an audit row and a timeline event', async () => {
    const { ctx } = h.daemon;
    const m = ctx.machines.resolve({ mac: '02:00:00:00:10:03', ip: '192.0.2.3' }).machine;
    assert.equal((await h.call('POST', '/api/v1/profiles', { body: { name: 'workers', spec: spec() } })).status, 201);
    const p = await h.call('PATCH', `/api/v1/machines/${m.id}`, { body: { hostname: 'node-1', profile: 'workers', labels: { rack: 'r1' } } });
    assert.equal(p.status, 200);
    assert.deepEqual([p.body.hostname, p.body.profile, p.body.labels], ['node-1', 'workers', { rack: 'r1' }]);
    assert.equal((await h.call('POST', `/api/v1/machines/${m.id}/accept`, { body: { reason: 'racked' } })).body.acceptance, 'accepted');
    assert.equal((await h.call('POST', `/api/v1/machines/${m.id}/reprovision`)).body.reprovision, true);
    assert.equal((await h.call('POST', `/api/v1/machines/${m.id}/reject`, { body: {} })).body.acceptance, 'rejected');
    const detail = await h.call('GET', `/api/v1/machines/${m.id}`);
    assert.deepEqual(
      detail.body.timeline.map((e: { kind: string }) => e.kind),
      ['machine.update', 'machine.accept', 'machine.reprovision', 'machine.reject'],
    );
    assert.equal(detail.body.timeline[1].message, 'accepted by an operator: racked');
    assert.deepEqual(detail.body.nics.map((n: { mac: string }) => n.mac), ['02:00:00:00:10:03']);
    assert.equal((await h.call('DELETE', `/api/v1/machines/${m.id}`)).status, 204);
    assert.equal((await h.call('GET', `/api/v1/machines/${m.id}`)).status, 404);
    const audit = await h.call('GET', `/api/v1/audit?machine=${m.id}`);
    const adminId = h.admin.split('_')[1];
    assert.deepEqual(
      audit.body.items.map((a: { action: string }) => a.action),
      ['machine.delete', 'machine.reject', 'machine.reprovision', 'machine.accept', 'machine.update'],
    );
    assert.ok(audit.body.items.every((a: { actor: string; ip: string }) => a.actor === `token:${adminId}` && a.ip === '127.0.0.1'));
  });

  test('paging and filters over many machines', async () => {
    const { ctx } = h.daemon;
    ctx.db.transaction(() => {
      for (let i = 0; i < 120; i++) {
        const mac = `02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
        const m = ctx.machines.resolve({ mac, hostname: `pg-${String(i).padStart(3, '0')}`, ip: `192.0.2.${i + 1}`, arch: i % 2 ? 'arm64' : 'x86_64', at: 1_700_000_000_000 + i }).machine;
        if (i % 3 === 0) ctx.machines.setState(m.id, 'ready', null);
        if (i % 10 === 0) ctx.machines.update(m.id, { labels: { rack: `r${i % 20}`, zone: 'a' } });
      }
    })();
    const page = await h.call('GET', '/api/v1/machines?q=pg-&limit=50&offset=100&sort=hostname');
    assert.equal(page.body.total, 120);
    assert.equal(page.body.items.length, 20);
    assert.equal(page.body.items[0].hostname, 'pg-100');
    const desc = await h.call('GET', '/api/v1/machines?q=pg-&limit=2&sort=hostname&order=desc');
    assert.deepEqual(desc.body.items.map((m: { hostname: string }) => m.hostname), ['pg-119', 'pg-118']);
    assert.equal((await h.call('GET', '/api/v1/machines?q=pg-&state=ready&limit=1')).body.total, 40);
    const byLabel = await h.call('GET', '/api/v1/machines?label=rack=r0&label=zone=a');
    assert.deepEqual(byLabel.body.items.map((m: { hostname: string }) => m.hostname), ['pg-000', 'pg-020', 'pg-040', 'pg-060', 'pg-080', 'pg-100']);
    const byMac = await h.call('GET', '/api/v1/machines?q=02:00:00:01:00:4');
    assert.equal(byMac.body.total, 16, 'MAC substring 00:4x matches 0x40..0x4f');
    const byIp = await h.call('GET', '/api/v1/machines?q=192.0.2.77');
    assert.deepEqual(byIp.body.items.map((m: { hostname: string }) => m.hostname), ['pg-076']);
    // LIKE wildcards in the search text are literal.
    assert.equal((await h.call('GET', '/api/v1/machines?q=pg%25')).body.total, 0);
    assert.equal((await h.call('GET', '/api/v1/machines?q=pg_')).body.total, 0);
    assert.equal((await h.call('GET', '/api/v1/machines?q=pg-&acceptance=pending&profile=')).body.total, 120);
  });

  test('Host must be allowlisted (421) and cross-site requests are refused (403)', async () => {
    const port = new URL(h.url).port;
    const auth = { authorization: `Bearer ${h.admin}` };
    const evil = await raw(h.url, { path: '/api/v1/machines', headers: { ...auth, host: `evil.example:${port}` } });
    assert.equal(evil.status, 421);
    assert.equal(JSON.parse(evil.body).error.code, 'misdirected');
    assert.equal((await raw(h.url, { path: '/', headers: { host: `rebind.attacker.test:${port}` } })).status, 421);
    // Without a Host header Node's HTTP server refuses the request before heph sees it.
    assert.equal((await raw(h.url, { path: '/api/v1/machines', headers: { ...auth } })).status, 400, 'no Host header');
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      assert.equal((await raw(h.url, { path: '/api/v1/machines', headers: { ...auth, host } })).status, 200, host);
    }
    const host = `127.0.0.1:${port}`;
    const post = (headers: Record<string, string>) =>
      raw(h.url, { method: 'POST', path: '/api/v1/profiles/validate', headers: { ...auth, host, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'x', spec: spec() }) });
    const cross = await post({ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    assert.equal(cross.status, 403);
    assert.equal(JSON.parse(cross.body).error.code, 'cross_site');
    assert.equal((await post({ origin: 'http://evil.example' })).status, 403, 'foreign Origin without fetch metadata');
    assert.equal((await post({ 'sec-fetch-site': 'same-site' })).status, 403);
    assert.equal((await post({ origin: 'null' })).status, 403);
    assert.equal((await post({ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' })).status, 200);
    assert.equal((await post({})).status, 200, 'tools such as curl send neither header');
    // A link from elsewhere may open the page, but not read the API.
    assert.equal((await raw(h.url, { path: '/', headers: { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' } })).status, 200);
    assert.equal((await raw(h.url, { path: '/api/v1/machines', headers: { ...auth, host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' } })).status, 403);
  });

  test('web session: HttpOnly SameSite=Strict cookie, CSRF token required for changes, logout ends it', async () => {
    const op = h.token('operator', 'browser');
    const bad = await h.call('POST', '/api/v1/session', { token: undefined, body: { token: 'heph_nope' } });
    assert.equal(bad.status, 401);
    const login = await h.call('POST', '/api/v1/session', { token: undefined, body: { token: op } });
    assert.equal(login.status, 200);
    const setCookie = login.headers.get('set-cookie')!;
    assert.match(setCookie, /^heph_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=28800$/);
    assert.ok(!JSON.stringify(login.body).includes(setCookie.split(';')[0]!.split('=')[1]!), 'the cookie value is not in the body');
    const cookie = setCookie.split(';')[0]!;
    const csrf = login.body.csrfToken as string;
    const m = h.daemon.ctx.machines.resolve({ mac: '02:00:00:00:10:04' }).machine;
    const noCsrf = await h.call('POST', `/api/v1/machines/${m.id}/accept`, { token: undefined, headers: { cookie }, body: {} });
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.body.error.code, 'csrf');
    const wrongCsrf = await h.call('POST', `/api/v1/machines/${m.id}/accept`, { token: undefined, headers: { cookie, 'x-csrf-token': csrf.slice(1) + 'x' }, body: {} });
    assert.equal(wrongCsrf.status, 403);
    const ok = await h.call('POST', `/api/v1/machines/${m.id}/accept`, { token: undefined, headers: { cookie, 'x-csrf-token': csrf }, body: {} });
    assert.equal(ok.status, 200);
    assert.equal((await h.call('GET', '/api/v1/session', { token: undefined, headers: { cookie } })).body.csrfToken, csrf);
    assert.equal((await h.call('GET', '/api/v1/tokens', { token: undefined, headers: { cookie } })).status, 403, 'the session carries the token scope');
    assert.equal((await h.call('DELETE', '/api/v1/session', { token: undefined, headers: { cookie, 'x-csrf-token': csrf } })).status, 204);
    assert.equal((await h.call('GET', '/api/v1/session', { token: undefined, headers: { cookie } })).status, 401);
  });

  test('revoking a token ends its web sessions', async () => {
    const t = await h.call('POST', '/api/v1/tokens', { body: { name: 'to-revoke', scope: 'read' } });
    const login = await h.call('POST', '/api/v1/session', { token: undefined, body: { token: t.body.token } });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    assert.equal((await h.call('GET', '/api/v1/machines', { token: undefined, headers: { cookie } })).status, 200);
    await h.call('DELETE', `/api/v1/tokens/${t.body.record.id}`);
    assert.equal((await h.call('GET', '/api/v1/machines', { token: undefined, headers: { cookie } })).status, 401);
  });

  test('profiles and selectors: CRUD, validation by the boot module, in-use refusal, secrets redacted, audit', async () => {
    assert.equal((await h.call('POST', '/api/v1/profiles', { body: { name: 'Bad Name', spec: spec() } })).status, 400);
    const noVersion = await h.call('POST', '/api/v1/profiles', { body: { name: 'cp', spec: { baseInline: 'x: 1' } } });
    assert.equal(noVersion.status, 400);
    assert.match(noVersion.body.error.message, /^spec: profile cp: talosVersion must look like v1\.13\.9/);
    assert.match((await h.call('POST', '/api/v1/profiles', { body: { name: 'cp', spec: { ...spec(), colour: 'red' } } })).body.error.message, /^spec: .*unknown key "colour"/);
    const made = await h.call('POST', '/api/v1/profiles', { body: { name: 'cp', spec: spec() } });
    assert.equal(made.status, 201);
    assert.equal(made.body.spec.baseInline, SECRET_BASE, 'admin sees the base config');
    assert.equal((await h.call('POST', '/api/v1/profiles', { body: { name: 'cp', spec: spec() } })).status, 409);
    const v = await h.call('POST', '/api/v1/profiles/validate', { body: { name: 'x', spec: { ...spec(), kernelArgs: ['console=ttyS0'] } } });
    assert.equal(v.body.valid, false);
    assert.match(v.body.problems[0], /kernelArgs must include talos\.platform=metal/);
    assert.deepEqual((await h.call('POST', '/api/v1/profiles/validate', { body: { name: 'x', spec: spec() } })).body, { valid: true, problems: [] });
    const put = await h.call('PUT', '/api/v1/profiles/cp', { body: { name: 'cp', spec: { ...spec(), install: { disk: '/dev/sda' } } } });
    assert.deepEqual(put.body.spec.install, { disk: '/dev/sda' });
    assert.equal((await h.call('PUT', '/api/v1/profiles/cp', { body: { name: 'other', spec: spec() } })).status, 400);
    const asReader = await h.call('GET', '/api/v1/profiles/cp', { token: h.token('read') });
    assert.equal(asReader.status, 200);
    assert.match(asReader.body.spec.baseInline, /^\[redacted: \d+ bytes\]$/);
    assert.ok(!JSON.stringify(asReader.body).includes('bootstrap-secret'));
    assert.ok(!JSON.stringify((await h.call('GET', '/api/v1/profiles', { token: h.token('operator') })).body).includes('bootstrap-secret'));

    const noProfile = await h.call('POST', '/api/v1/selectors', { body: { name: 'rack1', profile: 'missing' } });
    assert.equal(noProfile.status, 400);
    assert.match(noProfile.body.error.message, /profile: no profile named "missing"/);
    assert.match((await h.call('POST', '/api/v1/selectors', { body: { name: 'rack1', profile: 'cp', match: { mac: 'not-a-mac' } } })).body.error.message, /^match: selector rack1: match\.mac: "not-a-mac" is not valid/);
    assert.match((await h.call('POST', '/api/v1/selectors', { body: { name: 'rack1', profile: 'cp', match: { mac: 7 } } })).body.error.message, /^match\.mac: /);
    assert.match((await h.call('POST', '/api/v1/selectors', { body: { name: 'rack1', profile: 'cp', match: { colour: 'red' } } })).body.error.message, /^match\.colour: is not a known field/);
    const sel = await h.call('POST', '/api/v1/selectors', { body: { name: 'rack1', profile: 'cp', match: { labels: { rack: 'r1' }, mac: 'AA-BB-CC-00-00-01' }, autoAccept: true } });
    assert.equal(sel.status, 201, JSON.stringify(sel.body));
    assert.deepEqual([sel.body.match, sel.body.autoAccept], [{ mac: ['aa:bb:cc:00:00:01'], labels: { rack: 'r1' } }, true], 'stored normalised');
    const inUse = await h.call('DELETE', '/api/v1/profiles/cp');
    assert.equal(inUse.status, 409);
    assert.match(inUse.body.error.message, /rack1/);

    // Which profile would a machine get, and why?
    const { ctx } = h.daemon;
    const m = ctx.machines.resolve({ mac: 'aa:bb:cc:00:00:01' }).machine;
    const none = await h.call('GET', `/api/v1/machines/${m.id}/profile`);
    assert.deepEqual([none.body.profile, none.body.via], [null, null]);
    assert.match(none.body.reason, /no selector matches/);
    ctx.machines.update(m.id, { labels: { rack: 'r1' } });
    const bySelector = await h.call('GET', `/api/v1/machines/${m.id}/profile`, { token: h.token('read') });
    assert.deepEqual([bySelector.body.profile, bySelector.body.via, bySelector.body.selector, bySelector.body.autoAccept, bySelector.body.profileExists], ['cp', 'selector', 'rack1', true, true]);
    assert.match(bySelector.body.reason, /selector rack1 matches 2 keys/);
    assert.equal((await h.call('POST', '/api/v1/profiles', { body: { name: 'special', spec: spec() } })).status, 201);
    await h.call('PATCH', `/api/v1/machines/${m.id}`, { body: { profile: 'special' } });
    const assigned = await h.call('GET', `/api/v1/machines/${m.id}/profile`);
    assert.deepEqual([assigned.body.profile, assigned.body.via], ['special', 'assignment']);
    assert.equal((await h.call('GET', '/api/v1/machines/m-nope/profile')).status, 404);

    assert.equal((await h.call('PUT', '/api/v1/selectors/rack1', { body: { name: 'rack1', profile: 'cp', match: {} } })).body.autoAccept, false);
    assert.equal((await h.call('GET', '/api/v1/selectors')).body.items.length, 1);
    assert.equal((await h.call('DELETE', '/api/v1/selectors/rack1')).status, 204);
    assert.equal((await h.call('DELETE', '/api/v1/profiles/cp')).status, 204);
    assert.equal((await h.call('GET', '/api/v1/profiles/cp')).status, 404);
    const audit = await h.call('GET', '/api/v1/audit?limit=500');
    const actions = audit.body.items.map((a: { action: string }) => a.action);
    for (const a of ['profile.create', 'profile.update', 'profile.delete', 'selector.create', 'selector.update', 'selector.delete']) assert.ok(actions.includes(a), a);
    assert.ok(!JSON.stringify(audit.body).includes('bootstrap-secret'), 'the audit records names, not bodies');
  });

  test('events list and the live SSE stream', async () => {
    const { ctx } = h.daemon;
    const m = ctx.machines.resolve({ mac: '02:00:00:00:10:05' }).machine;
    const ac = new AbortController();
    const res = await fetch(`${h.url}/api/v1/events/stream?machine=${m.id}`, { headers: { authorization: `Bearer ${h.admin}` }, signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const reader = res.body!.getReader();
    ctx.timeline.append({ machineId: 'someone-else', kind: 'dhcp.discover', source: 'dhcp', message: 'not for this stream' });
    ctx.timeline.append({ machineId: m.id, kind: 'tftp.done', source: 'tftp', message: 'ipxe.efi sent', ip: '192.0.2.9' });
    let text = '';
    while (!text.includes('tftp.done')) text += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    assert.ok(!text.includes('not for this stream'));
    const data = JSON.parse(/event: timeline\ndata: (.*)\n/.exec(text)![1]!);
    assert.equal(data.machineId, m.id);
    assert.equal(data.message, 'ipxe.efi sent');
    assert.match(data.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const list = await h.call('GET', `/api/v1/events?machine=${m.id}`);
    assert.deepEqual(list.body.items.map((e: { kind: string }) => e.kind), ['tftp.done']);
    const unauth = await fetch(`${h.url}/api/v1/events/stream`);
    assert.equal(unauth.status, 401);
  });

  test('asset imports from a release URL run in the background and report progress', async () => {
    const files: Record<string, Buffer> = { 'vmlinuz-amd64': randomBytes(1 << 20), 'initramfs-amd64.xz': randomBytes(3 << 20) };
    const sums = (tamper: boolean): string =>
      Object.entries(files)
        .map(([n, b]) => `${createHash('sha512').update(tamper && n.startsWith('initramfs') ? Buffer.from('other') : b).digest('hex')}  ${n}`)
        .join('\n');
    // A release on loopback, like github.com/siderolabs/talos/releases/download/<version>/.
    const server = createServer((req, res) => {
      const m = /^\/(good|bad)\/v1\.13\.9\/(.+)$/.exec(req.url ?? '');
      const body = m && (m[2] === 'sha512sum.txt' ? Buffer.from(sums(m[1] === 'bad')) : files[m[2]!]);
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.equal((await h.call('POST', '/api/v1/assets/imports', { token: h.token('operator'), body: { source: `${base}/good/v1.13.9` } })).status, 403);
      const local = await h.call('POST', '/api/v1/assets/imports', { body: { source: '/etc' } });
      assert.equal(local.status, 400);
      assert.match(local.body.error.message, /^source: /);
      const started = await h.call('POST', '/api/v1/assets/imports', { body: { source: `${base}/good/v1.13.9`, arches: ['amd64'] } });
      assert.equal(started.status, 202);
      assert.equal(started.body.state, 'running');
      let job = started.body;
      for (let i = 0; i < 200 && job.state === 'running'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        job = (await h.call('GET', `/api/v1/assets/imports/${started.body.id}`, { token: h.token('read') })).body;
      }
      assert.equal(job.state, 'done', JSON.stringify(job));
      assert.deepEqual(job.files['initramfs-amd64.xz'], { done: 3 << 20, total: 3 << 20 });
      assert.deepEqual(job.imported.map((a: { name: string }) => a.name).sort(), ['initramfs-amd64.xz', 'vmlinuz-amd64']);
      const assets = await h.call('GET', '/api/v1/assets', { token: h.token('read') });
      assert.deepEqual(assets.body.items.map((a: { name: string; version: string }) => `${a.version} ${a.name}`), ['v1.13.9 initramfs-amd64.xz', 'v1.13.9 vmlinuz-amd64']);
      const bad = await h.call('POST', '/api/v1/assets/imports', { body: { source: `${base}/bad/v1.13.9` } });
      for (let i = 0; i < 200 && job.state !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        job = (await h.call('GET', `/api/v1/assets/imports/${bad.body.id}`)).body;
      }
      assert.equal(job.state, 'failed');
      assert.match(job.error, /initramfs-amd64\.xz: SHA-512 mismatch/);
      assert.deepEqual((await h.call('GET', '/api/v1/assets/imports')).body.items.map((j: { id: string }) => j.id), [bad.body.id, started.body.id]);
      assert.equal((await h.call('GET', '/api/v1/audit?action=asset.import')).body.items.length, 2);
    } finally {
      server.close();
    }
  });

  test('the OpenAPI document describes every route with schemas that compile', async () => {
    const r = await h.call('GET', '/api/v1/openapi.json', { token: undefined });
    assert.equal(r.status, 200);
    const doc = r.body;
    assert.equal(doc.openapi, '3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, o]) => Object.entries(o).map(([method, op]) => ({ path, method, op })));
    const ids = ops.map((o) => o.op.operationId);
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    for (const expected of ['get /api/v1/machines', 'patch /api/v1/machines/{id}', 'post /api/v1/machines/{id}/accept', 'post /api/v1/machines/{id}/reprovision', 'delete /api/v1/machines/{id}', 'post /api/v1/profiles', 'post /api/v1/selectors/validate', 'get /api/v1/machines/{id}/profile', 'get /api/v1/events/stream', 'get /api/v1/audit', 'post /api/v1/tokens', 'delete /api/v1/tokens/{id}', 'get /api/v1/assets', 'post /api/v1/assets/imports', 'get /api/v1/assets/imports/{id}']) {
      assert.ok(ops.some((o) => `${o.method} ${o.path}` === expected), expected);
    }
    const ajv = new Ajv({ strict: false, validateFormats: false });
    ajv.addSchema(doc.components.schemas.Error, '#/components/schemas/Error');
    for (const { path, method, op } of ops) {
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = op.parameters.filter((p: { in: string }) => p.in === 'path').map((p: { name: string }) => p.name).sort();
      assert.deepEqual(declared, templated, `${method} ${path}: path parameters`);
      assert.ok(op.summary, `${method} ${path}: summary`);
      assert.ok(['public', 'read', 'operator', 'admin'].includes(op['x-required-scope']));
      for (const p of op.parameters) ajv.compile(p.schema);
      if (op.requestBody) ajv.compile(op.requestBody.content['application/json'].schema);
      for (const [code, resp] of Object.entries(op.responses as Record<string, any>)) {
        assert.match(code, /^[1-5]\d\d$/);
        assert.ok(resp.description);
        const schema = resp.content?.['application/json']?.schema;
        if (schema && !schema.$ref) ajv.compile(schema);
      }
    }
    const docs = await fetch(`${h.url}/docs`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /<script type="module" src="\/ui\/docs.js">/);
  });
  test('an admin request\'s writes are committed on their own before the answer, even while a boot request\'s shared commit is open', async () => {
    const ctx = h.daemon.ctx;
    const app = (h.daemon.services.find((s) => s.name === 'api') as HttpService).app;
    const other = new Database(ctx.db.name, { readonly: true });
    const count = (sql: string): number => (other.prepare(sql).get() as { n: number }).n;
    try {
      // A boot request's commit opens this turn's shared transaction (committed in the check phase); inject() runs
      // the admin request within this same turn, so the admin request's writes would otherwise join it.
      const turns = ctx.durable.turns;
      ctx.durable.commit(() => audit(ctx.db, { actor: 'test', action: 'boot-in-turn' }));
      // A token's first use records when it was used: a plain UPDATE, outside any transaction of its own.
      const reader = h.token('read', 'in-turn-reader');
      const r = await app.inject({ method: 'GET', url: '/api/v1/machines', headers: injectHeaders(reader) });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(ctx.durable.turns, turns + 1, 'the open turn was committed before the admin request');
      assert.equal(count("SELECT count(*) AS n FROM api_tokens WHERE name = 'in-turn-reader' AND last_used_at IS NOT NULL"), 1, 'another connection sees the write as the answer arrives');
      assert.equal(count("SELECT count(*) AS n FROM audit WHERE action = 'boot-in-turn'"), 1);
      // And a write in a transaction of its own, the same way.
      ctx.durable.commit(() => audit(ctx.db, { actor: 'test', action: 'boot-in-turn-2' }));
      const t = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: injectHeaders(h.admin), payload: { name: 'in-turn', scope: 'read' } });
      assert.equal(t.statusCode, 201, t.body);
      assert.equal(count("SELECT count(*) AS n FROM api_tokens WHERE name = 'in-turn'"), 1);
    } finally {
      other.close();
    }
  });
  test('a write an admin handler makes after an await, into a shared commit opened meanwhile, is committed and synced before the answer', async () => {
    const ctx = h.daemon.ctx;
    // The daemon's own API cannot take a new route once listening, so the same composition on an app of the test's,
    // with one route that does what a handler may: await, then write while a boot request's shared commit is open.
    const app = Fastify();
    composeApi(app, ctx, new Tokens(ctx.db), new Sessions(ctx.db, 3_600_000), 3_600_000);
    app.post('/api/v1/test-late-write', { config: { scope: 'operator' } }, async () => {
      await new Promise((res) => setImmediate(res));
      ctx.durable.commit(() => audit(ctx.db, { actor: 'test', action: 'boot-during-await' }));
      audit(ctx.db, { actor: 'test', action: 'late-admin-write' });
      return { ok: true };
    });
    const other = new Database(ctx.db.name, { readonly: true });
    const count = (action: string): number => (other.prepare('SELECT count(*) AS n FROM audit WHERE action = ?').get(action) as { n: number }).n;
    try {
      await ctx.durable.commit(() => undefined).durable; // so that no earlier sync is still running
      const syncs = ctx.durable.syncs;
      const r = await app.inject({ method: 'POST', url: '/api/v1/test-late-write', headers: injectHeaders(h.admin), payload: {} });
      // Read before this turn's check phase, where the shared commit would otherwise have been committed.
      const seen = [count('late-admin-write'), count('boot-during-await'), ctx.durable.syncs - syncs];
      assert.equal(r.statusCode, 200, r.body);
      // Two syncs had begun: the one the answer waited for (fdatasync on this thread), and the one every commit of a
      // shared turn starts for its own waiters. A commit without the inline sync would show 1, no commit at all 0.
      assert.deepEqual(seen, [1, 1, 2], 'another connection sees both writes, and the WAL was synced, as the answer arrives');
    } finally {
      other.close();
      await app.close();
    }
  });
});
