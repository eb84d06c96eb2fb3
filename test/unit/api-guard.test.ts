import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { allowedHosts, checkHost, checkOrigin, hostOf } from '../../src/api/guard.ts';

test('hostOf strips the port and lowercases, IPv6 literals keep their brackets', () => {
  assert.equal(hostOf('Heph.Example:9080'), 'heph.example');
  assert.equal(hostOf('127.0.0.1'), '127.0.0.1');
  assert.equal(hostOf('[::1]:9080'), '[::1]');
  assert.equal(hostOf('[::1]'), '[::1]');
});

test('the Host allowlist: loopback names, a specific listen address, and the api.hosts setting', () => {
  const wildcard = allowedHosts('0.0.0.0', ['Heph.Example.org']);
  assert.deepEqual([...wildcard].sort(), ['127.0.0.1', '[::1]', 'heph.example.org', 'localhost']);
  assert.ok(allowedHosts('192.0.2.10', []).has('192.0.2.10'));
  assert.equal(checkHost('heph.example.org:443', wildcard), undefined);
  assert.equal(checkHost('localhost:9080', wildcard), undefined);
  for (const bad of [undefined, '', 'evil.example', 'localhost.evil.example', '127.0.0.1.nip.io:9080', '0.0.0.0:9080', 'heph.example.org.evil']) {
    assert.equal(checkHost(bad, wildcard)?.status, 421, String(bad));
  }
});

test('no host outside the allowlist passes, whatever its port', () => {
  const allowed = allowedHosts('127.0.0.1', ['heph.lan']);
  fc.assert(
    fc.property(fc.domain(), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), (domain, port) => {
      const header = port === undefined ? domain : `${domain}:${port}`;
      const ok = checkHost(header, allowed) === undefined;
      assert.equal(ok, allowed.has(domain.toLowerCase()));
    }),
  );
});

test('cross-site requests are refused; same-origin, user-typed and tool requests pass', () => {
  const base = { method: 'POST', host: '127.0.0.1:9080', page: false };
  assert.equal(checkOrigin({ ...base }), undefined, 'curl: no Origin, no fetch metadata');
  assert.equal(checkOrigin({ ...base, origin: 'http://127.0.0.1:9080', fetchSite: 'same-origin' }), undefined);
  assert.equal(checkOrigin({ ...base, method: 'GET', fetchSite: 'none', page: true }), undefined);
  assert.equal(checkOrigin({ ...base, origin: 'http://evil.example' })?.status, 403);
  assert.equal(checkOrigin({ ...base, origin: 'http://127.0.0.1:9081' })?.status, 403, 'another port is another origin');
  assert.equal(checkOrigin({ ...base, origin: 'not a url' })?.status, 403);
  assert.equal(checkOrigin({ ...base, origin: 'null' })?.status, 403);
  assert.equal(checkOrigin({ ...base, method: 'GET', origin: 'null' }), undefined);
  assert.equal(checkOrigin({ ...base, fetchSite: 'cross-site' })?.status, 403);
  assert.equal(checkOrigin({ ...base, fetchSite: 'same-site' })?.status, 403);
  // Following a link to the page is fine; the API is never reachable cross-site, not even a GET.
  assert.equal(checkOrigin({ ...base, method: 'GET', fetchSite: 'cross-site', fetchMode: 'navigate', page: true }), undefined);
  assert.equal(checkOrigin({ ...base, method: 'GET', fetchSite: 'cross-site', fetchMode: 'navigate', page: false })?.status, 403);
  assert.equal(checkOrigin({ ...base, method: 'POST', fetchSite: 'cross-site', fetchMode: 'navigate', page: true })?.status, 403, 'a cross-site form post');
});
