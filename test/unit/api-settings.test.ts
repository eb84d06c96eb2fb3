import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSettings, SettingsError } from '../../src/settings.ts';

const load = (env: NodeJS.ProcessEnv = {}, overrides: string[] = []) => loadSettings({ env, overrides, cwd: '/nonexistent' }).settings;

test('the admin surface is on by default and only on loopback', () => {
  const s = load();
  assert.deepEqual(s.api, { enabled: true, listen: '127.0.0.1', port: 9080, hosts: [], sessionHours: 8, grpc: { enabled: true, listen: '127.0.0.1', port: 9443 } });
});

test('api settings come from the environment and flags, and bad values name the setting', () => {
  const s = load({ HEPH_API_HOSTS: 'heph.lan, 192.0.2.10', HEPH_API_GRPC_PORT: '0' }, ['api.listen=0.0.0.0']);
  assert.deepEqual(s.api.hosts, ['heph.lan', '192.0.2.10']);
  assert.equal(s.api.grpc.port, 0);
  assert.equal(s.api.listen, '0.0.0.0');
  assert.throws(() => load({ HEPH_API_HOSTS: 'evil host' }), (e: SettingsError) => e instanceof SettingsError && /HEPH_API_HOSTS: api\.hosts: item 0/.test(e.message));
  assert.throws(() => load({}, ['api.sessionHours=0']), /api\.sessionHours: expected a whole number from 1 to 168/);
  assert.throws(() => load({}, ['api.grpc.prot=1']), /did you mean api\.grpc\.port/);
});
