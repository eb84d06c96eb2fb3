import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { buildMachineQuery, likePattern, parseLabelFilter, type MachineFilter } from '../../src/api/machine-query.ts';
import { describeValidation } from '../../src/api/errors.ts';
import { openApiPath } from '../../src/api/openapi.ts';
import { MIGRATIONS_DIR } from '../../src/inventory/db.ts';
import { Machines } from '../../src/inventory/machines.ts';
import { migrate, readMigrations } from '../../src/inventory/migrate.ts';

const page = { limit: 100, offset: 0 };

function run(d: Database.Database, f: MachineFilter): string[] {
  const q = buildMachineQuery(f);
  return d.prepare(`SELECT m.hostname FROM machines m ${q.where} ORDER BY ${q.order} LIMIT @limit OFFSET @offset`).pluck().all({ ...q.params, limit: f.limit, offset: f.offset }) as string[];
}

test('an empty filter selects everything in first-seen order', () => {
  assert.deepEqual(buildMachineQuery({ ...page }), { where: '', order: 'm.first_seen ASC, m.id ASC', params: {} });
});

test('filters combine with AND; user text only ever travels as a parameter', () => {
  const q = buildMachineQuery({ ...page, state: "ready' OR 1=1 --", profile: '', labels: [{ key: 'rack', value: 'r1' }], q: 'x', sort: 'hostname', desc: true });
  assert.ok(!q.where.includes('OR 1=1'));
  assert.match(q.where, /m\.profile IS NULL/);
  assert.equal(q.order, 'm.hostname DESC, m.id DESC');
  assert.deepEqual(q.params, { state: "ready' OR 1=1 --", lk0: 'rack', lv0: 'r1', q: '%x%' });
});

test('likePattern makes % _ and \\ literal', () => {
  assert.equal(likePattern('a%b_c\\'), '%a\\%b\\_c\\\\%');
});

test('parseLabelFilter', () => {
  assert.deepEqual(parseLabelFilter('rack=r1'), { key: 'rack', value: 'r1' });
  assert.deepEqual(parseLabelFilter('k=a=b'), { key: 'k', value: 'a=b' });
  assert.deepEqual(parseLabelFilter('k='), { key: 'k', value: '' });
  assert.equal(parseLabelFilter('=v'), undefined);
  assert.equal(parseLabelFilter('novalue'), undefined);
});

test('free text finds exactly the machines whose fields contain it (against SQLite)', () => {
  const d = new Database(':memory:');
  migrate(d, readMigrations(MIGRATIONS_DIR));
  const machines = new Machines(d);
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 8 }), fc.string({ minLength: 1, maxLength: 4 }), (names, needle) => {
      d.exec('DELETE FROM machines');
      const rows = names.map((n, i) => {
        const mac = `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`;
        return { hostname: n, mac, id: machines.resolve({ mac, hostname: n, at: i }).machine.id };
      });
      const got = run(d, { ...page, q: needle });
      // SQLite's lower() folds ASCII only, so the oracle does too.
      const fold = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
      const want = rows.filter((r) => [r.hostname, r.mac, r.id].some((f) => fold(f).includes(fold(needle)))).map((r) => r.hostname);
      assert.deepEqual(got, want);
    }),
    { numRuns: 200 },
  );
});

test('validation messages name the field as the client wrote it', () => {
  assert.equal(describeValidation('body', [{ instancePath: '/labels/rack', message: 'must be string', keyword: 'type', params: {} }]), 'labels.rack: must be string');
  assert.equal(describeValidation('body', [{ instancePath: '', keyword: 'required', params: { missingProperty: 'name' }, message: "must have required property 'name'" }]), "name: must have required property 'name'");
  assert.equal(describeValidation('body', [{ instancePath: '/match', keyword: 'additionalProperties', params: { additionalProperty: 'colour' } }]), 'match.colour: is not a known field');
  assert.equal(describeValidation('querystring', [{ instancePath: '/limit', keyword: 'minimum', params: {}, message: 'must be >= 1' }]), 'querystring limit: must be >= 1');
  assert.equal(describeValidation('body', [{ instancePath: '', keyword: 'type', params: {}, message: 'must be object' }]), 'body: must be object');
});

test('openApiPath turns fastify parameters into OpenAPI templates', () => {
  assert.equal(openApiPath('/api/v1/machines/:id/accept'), '/api/v1/machines/{id}/accept');
  assert.equal(openApiPath('/api/v1/profiles'), '/api/v1/profiles');
});
