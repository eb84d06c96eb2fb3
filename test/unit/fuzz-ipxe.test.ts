// Fuzz the /ipxe query: the claim validators on their own, then whole requests through fastify's query parser and
// the boot route of an in-process daemon (fastify inject, no sockets). Bar: never a 5xx; a refusal is a short 400;
// an accepted claim can carry nothing an iPXE script, URL, YAML or shell gives meaning to; every script served is
// made only of the commands heph's templates use, one per line, whatever the query said.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseBootClaims } from '../../src/ipxe/identity.ts';
import { inProcessHeph, REPO } from '../helpers/heph.ts';
import { params } from './fuzz-budget.ts';

const KEYS = ['mac', 'uuid', 'serial', 'hostname', 'arch', 'platform', 'manufacturer', 'product'];
const nasty = fc.constantFrom('${uuid}', '\n', '\r', '\0', ' ', '&', '=', '%', '#', ':', '\\', '"', "'", '`', '$(id)', '||', ';', '\u2028', '\uffff', 'chain http://x/', '..', '-', '.');
const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.array(fc.oneof(fc.string({ maxLength: 6 }), nasty), { maxLength: 8 }).map((a) => a.join('')),
  fc.constantFrom('52-54-00-12-34-56', '52:54:00:12:34:56', 'ff-ff-ff-ff-ff-ff', '01-00-5e-00-00-01', '8a0f1c2e-1111-4222-8333-944455556666', '03000200-0400-0500-0006-000700080009', 'x86_64', 'efi', 'pcbios', 'node-1', 'To Be Filled By O.E.M.'),
  fc.string({ minLength: 250, maxLength: 300 }),
);
const query = fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })), fc.oneof(value, fc.array(value, { minLength: 2, maxLength: 3 })), { maxKeys: 10 });

// What heph may put in a claim: printable ASCII with no script, URL, YAML or shell metacharacters.
const SAFE = /^[A-Za-z0-9 ._,()+/:-]*$/;

it('fuzz: parseBootClaims refuses or returns only safe, bounded values', () => {
  fc.assert(
    fc.property(query, (q) => {
      const r = parseBootClaims(q);
      if (!r.ok) {
        assert.equal(typeof r.field, 'string');
        return;
      }
      assert.ok(r.claims.mac || r.claims.uuid);
      for (const [k, v] of Object.entries(r.claims)) {
        assert.ok(typeof v === 'string' && v.length <= 256 && SAFE.test(v), `${k}=${JSON.stringify(v)}`);
        assert.ok(!v.includes('${'));
      }
      if (r.claims.mac) assert.match(r.claims.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      if (r.claims.uuid) assert.match(r.claims.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }),
    params(31, 30_000),
  );
});

const COMMANDS = new Set(['#!ipxe', 'boot', 'chain', 'echo', 'exit', 'goto', 'imgfree', 'inc', 'initrd', 'iseq', 'kernel', 'sanboot', 'set', 'sleep']);

describe('fuzz: /ipxe through fastify inject', () => {
  let heph: Awaited<ReturnType<typeof inProcessHeph>>;
  before(async () => {
    heph = await inProcessHeph({ profiles: { dir: `${REPO}test/fixtures/profiles` } });
  });
  after(async () => heph.stop());

  it('never a 5xx, refusals are short, scripts are made of template commands only', async () => {
    const encoded = fc.oneof(
      query.map((q) => new URLSearchParams(Object.entries(q).flatMap(([k, v]): [string, string][] => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]))).toString()),
      // Raw query bytes, including broken percent-encoding fastify's parser must survive.
      fc.array(fc.oneof(fc.constantFrom('mac=52-54-00-12-34-56', 'uuid=', '&', '=', '%', '%0a', '%zz', '%E2%80', '+', 'hostname=', '%24%7Buuid%7D'), fc.string({ unit: fc.constantFrom(...'abc019-_.~!*'.split('')), maxLength: 6 })), { maxLength: 12 }).map((a) => a.join('')),
    );
    await fc.assert(
      fc.asyncProperty(encoded, async (qs) => {
        const r = await heph.daemon.ctx.http.app.inject({ method: 'GET', url: `/ipxe?${qs}`, remoteAddress: '127.0.0.9' });
        assert.ok(r.statusCode < 500, `${r.statusCode} for ${qs}: ${r.body.slice(0, 200)}`);
        if (r.statusCode === 400) assert.ok(r.body.length < 1000);
        if (r.statusCode !== 200) return;
        assert.ok(r.body.startsWith('#!ipxe\n'));
        for (const line of r.body.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          assert.ok(COMMANDS.has(line.split(' ')[0]!), `unexpected script line ${JSON.stringify(line)} for ${qs}`);
          assert.doesNotMatch(line, /[\0\r]/);
        }
      }),
      params(32, 3_000),
    );
  });
});
