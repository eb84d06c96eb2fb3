// Fuzz the REST API's JSON bodies through fastify inject against an in-process daemon (auth, schema validation,
// the operations layer and the inventory all run for real). Bar: never a 5xx; every error is the documented
// { "error": { "code", "message" } }; the admin token never comes back in a response.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { HttpService } from '../../src/http/server.ts';
import { apiHeph, type ApiHeph } from '../helpers/api.ts';
import { params } from './fuzz-budget.ts';

const str = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', 'worker', 'node-1', 'v1.13.9', 'amd64', '/dev/vda', 'a'.repeat(300), '../etc/passwd', '${x}', '\u0000', 'admin', 'operator', 'viewer', 'x86_64'));
const yamlish = fc.constantFrom('version: v1alpha1\nmachine: {}\n', 'kind: NotTalos\n', '- op: add\n  path: /machine/x\n  value: 1\n', '{', 'a: &x {b: 1}\nc: *x\n', '');
const value: fc.Arbitrary<unknown> = fc.oneof(str, fc.integer(), fc.boolean(), fc.constant(null), fc.array(str, { maxLength: 3 }), fc.dictionary(str, str, { maxKeys: 3 }));
const spec = fc.record(
  {
    talosVersion: fc.oneof(str, value),
    arch: fc.oneof(str, value),
    kernelArgs: fc.oneof(fc.array(str, { maxLength: 4 }), value),
    base: fc.oneof(str, value),
    baseInline: fc.oneof(yamlish, value),
    patches: fc.oneof(fc.array(fc.oneof(str, fc.record({ inline: fc.oneof(yamlish, value) }), value), { maxLength: 3 }), value),
    install: fc.oneof(fc.record({ disk: str, wipe: fc.boolean() }, { requiredKeys: [] }), value),
  },
  { requiredKeys: [] },
);
const match = fc.dictionary(fc.constantFrom('mac', 'uuid', 'serial', 'arch', 'hostname', 'labels', 'other'), fc.oneof(str, fc.array(str, { maxLength: 3 }), fc.dictionary(str, str, { maxKeys: 2 }), value), { maxKeys: 4 });

const bodies: Record<string, fc.Arbitrary<unknown>> = {
  machinePatch: fc.record({ hostname: fc.oneof(str, fc.constant(null), value), profile: fc.oneof(str, fc.constant(null), value), labels: fc.oneof(fc.dictionary(str, str, { maxKeys: 4 }), value), extra: value }, { requiredKeys: [] }),
  reason: fc.oneof(fc.record({ reason: fc.oneof(str, value) }, { requiredKeys: [] }), value),
  token: fc.record({ name: fc.oneof(str, value), scope: fc.oneof(str, value) }, { requiredKeys: [] }),
  session: fc.record({ token: fc.oneof(str, value) }, { requiredKeys: [] }),
  profile: fc.record({ name: fc.oneof(str, value), spec: fc.oneof(spec, value) }, { requiredKeys: [] }),
  selector: fc.record({ name: fc.oneof(str, value), profile: fc.oneof(str, value), match: fc.oneof(match, value), autoAccept: fc.oneof(fc.boolean(), value) }, { requiredKeys: [] }),
};

describe('fuzz: REST API JSON bodies', () => {
  let h: ApiHeph;
  let app: HttpService['app'];
  let machine: string;
  before(async () => {
    h = await apiHeph();
    app = (h.daemon.services.find((s) => s.name === 'api') as HttpService).app;
    machine = h.daemon.ctx.machines.resolve({ mac: '52:54:00:fa:22:01' }).machine.id;
  });
  after(async () => h.stop());

  const routes = (): [string, string, keyof typeof bodies][] => [
    ['PATCH', `/api/v1/machines/${machine}`, 'machinePatch'],
    ['POST', `/api/v1/machines/${machine}/accept`, 'reason'],
    ['POST', `/api/v1/machines/${machine}/reject`, 'reason'],
    ['POST', `/api/v1/machines/${machine}/reprovision`, 'reason'],
    ['POST', '/api/v1/tokens', 'token'],
    ['POST', '/api/v1/session', 'session'],
    ['POST', '/api/v1/profiles/validate', 'profile'],
    ['POST', '/api/v1/profiles', 'profile'],
    ['PUT', '/api/v1/profiles/fuzz', 'profile'],
    ['POST', '/api/v1/selectors/validate', 'selector'],
    ['POST', '/api/v1/selectors', 'selector'],
    ['PUT', '/api/v1/selectors/fuzz', 'selector'],
  ];

  const seen = new Map<number, number>();
  async function check(method: string, url: string, payload: string): Promise<void> {
    const r = await app.inject({ method: method as 'POST', url, payload, headers: { authorization: `Bearer ${h.admin}`, 'content-type': 'application/json' } });
    seen.set(r.statusCode, (seen.get(r.statusCode) ?? 0) + 1);
    assert.ok(r.statusCode < 500, `${method} ${url} ${payload.slice(0, 300)} → ${r.statusCode} ${r.body.slice(0, 300)}`);
    assert.ok(!r.body.includes(h.admin), 'the admin token is never echoed');
    if (r.statusCode >= 400) {
      const b = JSON.parse(r.body) as { error?: { code?: unknown; message?: unknown } };
      assert.equal(typeof b.error?.code, 'string', r.body);
      assert.equal(typeof b.error?.message, 'string', r.body);
    }
  }

  it('structured bodies for every route that takes one', async () => {
    const cases = fc.integer({ min: 0, max: 11 }).chain((i) => fc.tuple(fc.constant(i), bodies[routes()[i]![2]]!));
    await fc.assert(
      fc.asyncProperty(cases, async ([i, body]) => {
        const [method, url] = routes()[i]!;
        await check(method, url, JSON.stringify(body));
      }),
      params(51, 3_000),
    );
    // The fuzz reaches past auth and validation: some bodies were accepted, some refused by the schema.
    const count = (lo: number, hi: number): number => [...seen].filter(([c]) => c >= lo && c < hi).reduce((a, [, n]) => a + n, 0);
    assert.ok(count(200, 300) > 50, `accepted: ${JSON.stringify([...seen])}`);
    assert.ok(count(400, 401) > 50, `refused: ${JSON.stringify([...seen])}`);
  });

  it('arbitrary JSON values and broken JSON text', async () => {
    const text = fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string({ maxLength: 60 }), fc.constantFrom('{', '{"name":', '[', 'null', '""', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '\u0000', '{"a":1e999}'));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 11 }), text, async (i, payload) => {
        const [method, url] = routes()[i]!;
        await check(method, url, payload);
      }),
      params(52, 2_000),
    );
  });
});
