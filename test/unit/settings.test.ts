import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseDocument } from 'yaml';
import { exampleSettings, loadSettings, SettingsError } from '../../src/settings.ts';
import { defaults, envName } from '../../src/schema.ts';
import { settingsSchema } from '../../src/settings.ts';
import { tempDir } from '../helpers/heph.ts';

const dir = tempDir();
after(() => dir.remove());

function write(name: string, text: string): string {
  const file = join(dir.path, name);
  writeFileSync(file, text);
  return file;
}

function messageFor(opts: Parameters<typeof loadSettings>[0]): string {
  try {
    loadSettings({ env: {}, ...opts });
  } catch (err) {
    assert.ok(err instanceof SettingsError, `expected a SettingsError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected the settings to be rejected');
}

describe('settings', () => {
  it('uses the built-in defaults when there is no file', () => {
    const { settings, file } = loadSettings({ cwd: dir.path, env: {} });
    assert.equal(file, undefined);
    assert.equal(settings.http.port, 8080);
    assert.equal(settings.dhcp.port, 67);
    assert.equal(settings.dhcp.proxyPort, 4011);
    assert.equal(settings.tftp.port, 69);
    assert.equal(settings.log.format, 'json');
  });

  it('reads a valid file and merges it over the defaults', () => {
    const file = write('ok.yaml', 'dataDir: /var/lib/heph\nhttp:\n  port: 9080\nnetwork:\n  interfaces: [eth1]\n  advertiseAddress: 192.0.2.10\ndhcp:\n  enabled: true\n');
    const { settings } = loadSettings({ file, env: {} });
    assert.equal(settings.dataDir, '/var/lib/heph');
    assert.equal(settings.http.port, 9080);
    assert.equal(settings.http.listen, '0.0.0.0');
    assert.deepEqual(settings.network.interfaces, ['eth1']);
    assert.equal(settings.dhcp.enabled, true);
  });

  it('reads ./heph.yaml from the working directory by default', () => {
    const sub = tempDir();
    writeFileSync(join(sub.path, 'heph.yaml'), 'http: {port: 7070}\n');
    try {
      assert.equal(loadSettings({ cwd: sub.path, env: {} }).settings.http.port, 7070);
    } finally {
      sub.remove();
    }
  });

  it('names file, line, field and reason for a bad value', () => {
    const file = write('port.yaml', '# comment\nhttp:\n  listen: 0.0.0.0\n  port: 80a\n');
    assert.equal(messageFor({ file }), `settings file ${file}, line 4: http.port: expected a whole number from 0 to 65535, got "80a"`);
  });

  it('names a misspelt key and suggests the right one', () => {
    const file = write('typo.yaml', 'http:\n  prot: 80\n');
    assert.equal(messageFor({ file }), `settings file ${file}, line 2: http.prot: unknown setting (did you mean "http.port"?); known here: listen, port`);
  });

  it('reports YAML syntax errors with their line', () => {
    const file = write('syntax.yaml', 'log:\n  level: info\nhttp: {port: 80\n');
    assert.match(messageFor({ file }), /syntax\.yaml, line \d: not valid YAML: .*flow/i);
  });

  it('rejects duplicate keys', () => {
    const file = write('dup.yaml', 'http:\n  port: 80\n  port: 81\n');
    assert.match(messageFor({ file }), /line 3: not valid YAML: Map keys must be unique/);
  });

  it('rejects a wrong type for a section', () => {
    const file = write('section.yaml', 'log: loud\n');
    assert.equal(messageFor({ file }), `settings file ${file}, line 1: log: expected a mapping of settings, got "loud"`);
  });

  it('rejects a bad enum value and lists the choices', () => {
    const file = write('enum.yaml', 'log:\n  level: chatty\n');
    assert.equal(messageFor({ file }), `settings file ${file}, line 2: log.level: expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got "chatty"`);
  });

  it('rejects a bad item inside a list at the list line', () => {
    const file = write('list.yaml', 'network:\n  interfaces:\n    - eth1\n    - "not an interface!"\n');
    assert.equal(messageFor({ file }), `settings file ${file}, line 2: network.interfaces: item 1: expected interface names such as eth1, got "not an interface!"`);
  });

  it('refuses DHCP without an interface, explaining why', () => {
    const file = write('dhcp.yaml', 'dhcp:\n  enabled: true\n');
    assert.match(messageFor({ file }), /dhcp\.enabled: proxy-DHCP needs network\.interfaces/);
  });

  it('says so when an explicit file is missing', () => {
    const file = join(dir.path, 'nope.yaml');
    assert.equal(messageFor({ file }), `settings file ${file}: no such file. Write one with \`heph settings example > heph.yaml\`, or leave out --config to use the defaults.`);
  });

  it('rejects a top level that is not a mapping', () => {
    const file = write('list-top.yaml', '- a\n- b\n');
    assert.equal(messageFor({ file }), `settings file ${file}, line 1: expected a mapping of settings (key: value lines) at the top level`);
  });

  it('applies HEPH_* environment overrides over the file and blames the variable for bad values', () => {
    const file = write('env.yaml', 'http:\n  port: 9080\n');
    const { settings } = loadSettings({ file, env: { HEPH_HTTP_PORT: '9090', HEPH_NETWORK_INTERFACES: 'eth1, eth2', HEPH_DHCP_ENABLED: 'true' } });
    assert.equal(settings.http.port, 9090);
    assert.deepEqual(settings.network.interfaces, ['eth1', 'eth2']);
    assert.equal(settings.dhcp.enabled, true);
    assert.equal(messageFor({ file, env: { HEPH_HTTP_PORT: 'x' } }), 'environment variable HEPH_HTTP_PORT: http.port: expected a whole number from 0 to 65535, got "x"');
    assert.equal(messageFor({ file, env: { HEPH_HTTP_PROT: '1' } }), 'environment variable HEPH_HTTP_PROT: not a heph setting (did you mean HEPH_HTTP_PORT?). Every HEPH_ variable must name one; see `heph settings example`.');
  });

  it('applies --set flags last', () => {
    const file = write('flags.yaml', 'http:\n  port: 9080\n');
    const { settings } = loadSettings({ file, env: { HEPH_HTTP_PORT: '9090' }, overrides: ['http.port=9100', 'log.format=pretty'] });
    assert.equal(settings.http.port, 9100);
    assert.equal(settings.log.format, 'pretty');
    assert.equal(messageFor({ file, overrides: ['http.port=high'] }), 'command-line flag --set http.port=high: http.port: expected a whole number from 0 to 65535, got "high"');
    assert.equal(messageFor({ file, overrides: ['http.prot=1'] }), 'command-line flag --set http.prot=1: http.prot: unknown setting (did you mean http.port?)');
    assert.equal(messageFor({ file, overrides: ['nonsense'] }), 'command-line flag --set nonsense: expected --set path=value, for example --set http.port=9080');
  });

  it('prints an example that parses back to exactly the defaults and documents every field', () => {
    const text = exampleSettings();
    const file = write('example.yaml', text);
    assert.deepEqual(loadSettings({ file, env: {} }).settings, defaults(settingsSchema));
    assert.deepEqual(parseDocument(text).errors, []);
    assert.match(text, new RegExp(envName('network.advertiseAddress')));
    assert.match(text, /HEPH_DHCP_PROXY_PORT/);
  });
});
