import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exampleSettings, loadSettings, SettingsError } from '../../src/settings.ts';

describe('tls, signing and secrets settings', () => {
  const load = (env: Record<string, string>, overrides: string[] = []) => loadSettings({ env, overrides, cwd: '/nonexistent' }).settings;

  it('are off by default and documented in the example file', () => {
    const s = load({});
    assert.equal(s.tls.enabled, false);
    assert.equal(s.tls.port, 8443);
    assert.equal(s.signing.enabled, false);
    assert.equal(s.secrets.keySource, 'auto');
    const example = exampleSettings();
    for (const key of ['HEPH_TLS_ENABLED', 'HEPH_TLS_DNS_NAMES', 'HEPH_SIGNING_ENABLED', 'HEPH_SECRETS_KEY_SOURCE', 'HEPH_SECRETS_CREDENTIAL']) assert.ok(example.includes(key), key);
  });

  it('read the environment and flags', () => {
    const s = load({ HEPH_SIGNING_ENABLED: 'yes', HEPH_TLS_IP_ADDRESSES: '192.0.2.1, 192.0.2.2' }, ['tls.enabled=true', 'secrets.keySource=credential']);
    assert.equal(s.signing.enabled, true);
    assert.deepEqual(s.tls.ipAddresses, ['192.0.2.1', '192.0.2.2']);
    assert.equal(s.tls.enabled, true);
    assert.equal(s.secrets.keySource, 'credential');
  });

  it('refuse bad values with the setting named', () => {
    const bad: [Record<string, string>, string[], RegExp][] = [
      [{}, ['tls.enabled=true', 'tls.port=8080'], /tls\.port: must differ from http\.port/],
      [{ HEPH_TLS_IP_ADDRESSES: '192.0.2.300' }, [], /tls\.ipAddresses/],
      [{}, ['tls.dnsNames=[bad name]'], /tls\.dnsNames/],
      [{}, ['secrets.keySource=vault'], /secrets\.keySource/],
      [{}, ['secrets.credential=../etc/passwd'], /secrets\.credential/],
    ];
    for (const [env, flags, re] of bad) assert.throws(() => load(env, flags), (e: unknown) => e instanceof SettingsError && re.test(e.message), `${JSON.stringify(env)} ${flags.join(' ')}`);
  });
});
