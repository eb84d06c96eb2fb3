// The real peer for "Talos reads exactly what the user wrote": Go's yaml.v3 (what Talos decodes configs with),
// built from Debian's golang-go + golang-gopkg-yaml.v3-dev. The same typed Go structs read the user's patch and
// the config we render from it; every patched field must come out identical.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderConfig, type RenderInput } from '../../src/configserve/render.ts';
import { CONTROLPLANE, WORKER, WORKER_SINGLE } from '../unit/configserve-fixtures.ts';

const GOPATH = '/usr/share/gocode';
const haveGo = spawnSync('go', ['version']).status === 0 && existsSync(`${GOPATH}/src/gopkg.in/yaml.v3`);
// CI installs the toolchain; skipping there would hide a missing install step.
const skip = !haveGo && process.env['CI'] === undefined ? 'needs golang-go and golang-gopkg-yaml.v3-dev' : false;

type GoDoc = { kind: string; hostname: string; machine: Record<string, unknown> & { nodeLabels: Record<string, string> | null } };

describe('configserve output as Go yaml.v3 reads it', { skip }, () => {
  let dir = '';
  let binary = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'heph-goyaml-'));
    binary = join(dir, 'goyaml');
    const source = fileURLToPath(new URL('./configserve-goyaml/', import.meta.url));
    const built = spawnSync('go', ['build', '-o', binary, '.'], {
      cwd: source,
      env: { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(dir, 'cache'), GOFLAGS: '', CGO_ENABLED: '0' },
      encoding: 'utf8',
    });
    assert.equal(built.status, 0, `go build: ${built.stderr}`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function goRead(text: string): GoDoc[] {
    const run = spawnSync(binary, { input: text, encoding: 'utf8' });
    assert.equal(run.status, 0, `Go could not decode:\n${run.stderr}\n${text}`);
    return run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as GoDoc);
  }

  function render(input: RenderInput): string {
    const result = renderConfig(input);
    assert.ok(result.ok, result.ok ? '' : result.errors.join('; '));
    return result.yaml;
  }

  it('reads every patched field as it reads the patch itself', () => {
    const patch = [
      'machine:',
      '  install:',
      '    wipe: yes',
      '  files:',
      '    - path: /var/a',
      '      op: create',
      '      permissions: 0755',
      '      content: on',
      '    - path: /var/b',
      '      op: create',
      '      permissions: 0o600',
      '      content: "0755"',
      '  nodeLabels:',
      '    a: on',
      '    b: "0755"',
      '    c: 0x1F',
      '    d: 1e3',
      '    e: 1_000',
      '    f: 012',
      '    g: No',
      '  sysctls:',
      '    net.ipv4.ip_forward: 1',
      '    vm.x: "01"',
      '  features:',
      '    kubePrism:',
      '      port: 017',
      '  network:',
      '    interfaces:',
      '      - interface: eth0',
      '        mtu: 9_000',
      '        dhcp: on',
      '',
    ].join('\n');
    const fromPatch = goRead(patch)[0]?.machine;
    const fromConfig = goRead(render({ base: WORKER_SINGLE, patches: [patch] }))[0]?.machine;
    assert.ok(fromPatch && fromConfig);
    for (const field of ['files', 'nodeLabels', 'sysctls', 'network'] as const) {
      assert.deepEqual(fromConfig[field], fromPatch[field], field);
    }
    assert.deepEqual((fromConfig['install'] as { wipe: boolean }).wipe, true);
    // the readings that YAML 1.2 would have changed
    assert.deepEqual((fromConfig['files'] as { permissions: number }[]).map((f) => f.permissions), [0o755, 0o600]);
    assert.equal((fromConfig['features'] as { kubePrism: { port: number } }).kubePrism.port, 0o17);
  });

  it('reads JSON patch values as the JSON said', () => {
    const yaml = render({
      base: WORKER_SINGLE,
      patches: [
        JSON.stringify([
          { op: 'add', path: '/machine/nodeLabels', value: { x: 'on', y: '0755', z: '1e3' } },
          { op: 'add', path: '/machine/files', value: [{ path: '/p', op: 'create', content: 'yes', permissions: 420 }] },
        ]),
      ],
    });
    const machine = goRead(yaml)[0]?.machine;
    assert.deepEqual(machine?.nodeLabels, { x: 'on', y: '0755', z: '1e3' });
    assert.deepEqual(machine?.['files'], [{ path: '/p', op: 'create', content: 'yes', permissions: 420 }]);
  });

  it('reads the machine facts as given', () => {
    const labels = { rack: 'on', slot: '0755', n: '1e3', t: 'true', e: '', z: 'null' };
    const docs = goRead(render({ base: WORKER, patches: [], machine: { hostname: 'w-1', labels } }));
    assert.deepEqual(docs[0]?.machine.nodeLabels, labels);
    assert.equal(docs.find((d) => d.kind === 'HostnameConfig')?.hostname, 'w-1');
  });

  it('decodes a whole rendered controlplane config, every document', () => {
    const docs = goRead(render({ base: CONTROLPLANE, patches: [], machine: { hostname: 'cp-1' } }));
    assert.deepEqual(
      docs.map((d) => d.kind),
      ['', 'HostnameConfig'],
    );
    assert.equal(docs[0]?.machine['type'], 'controlplane');
  });
});
