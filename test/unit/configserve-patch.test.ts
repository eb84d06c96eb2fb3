// Worked examples of Talos's patch semantics (protocols.md §3.5, configpatcher docs): strategic merge, $patch: delete,
// multi-document matching and RFC 6902.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyPatch, parsePatch } from '../../src/configserve/patch.ts';
import { parseYamlDocuments, stringifyDocuments, toPlain } from '../../src/configserve/yaml.ts';

type Outcome = { ok: true; docs: unknown[]; text: string } | { ok: false; errors: string[] };

function patch(base: string, ...patches: string[]): Outcome {
  const parsed = parseYamlDocuments(base);
  assert.deepEqual(parsed.errors, [], 'base parses');
  const config = parsed.docs;
  for (const text of patches) {
    const p = parsePatch(text);
    if ('errors' in p) return { ok: false, errors: p.errors };
    const errors = applyPatch(config, p.patch);
    if (errors.length > 0) return { ok: false, errors };
  }
  return { ok: true, docs: config.map((d) => toPlain(d.contents)), text: stringifyDocuments(config) };
}

function merged(base: string, ...patches: string[]): unknown[] {
  const out = patch(base, ...patches);
  assert.ok(out.ok, `patch applies: ${out.ok ? '' : out.errors.join('; ')}`);
  return out.docs;
}

function failure(base: string, ...patches: string[]): string {
  const out = patch(base, ...patches);
  assert.ok(!out.ok, 'patch must be refused');
  return out.errors.join('\n');
}

const y = (lines: string[]): string => `${lines.join('\n')}\n`;

describe('configserve strategic merge', () => {
  const cases: { name: string; base: string; patch: string; expect: unknown[] }[] = [
    {
      name: 'maps merge deeply',
      base: y(['machine:', '  type: worker', '  network:', '    hostname: a']),
      patch: y(['machine:', '  network:', '    nameservers: [192.0.2.53]']),
      expect: [{ machine: { type: 'worker', network: { hostname: 'a', nameservers: ['192.0.2.53'] } } }],
    },
    {
      name: 'a patch scalar replaces the base one',
      base: y(['machine:', '  install:', '    disk: /dev/sda']),
      patch: y(['machine:', '  install:', '    disk: /dev/vda']),
      expect: [{ machine: { install: { disk: '/dev/vda' } } }],
    },
    {
      name: 'Go zero values ("" and 0) never override, false does, null changes nothing',
      base: y(['machine:', '  install: {disk: /dev/sda, wipe: true}', '  features: {kubePrism: {port: 7445}}', '  type: worker']),
      patch: y(['machine:', '  install: {disk: "", wipe: false}', '  features: {kubePrism: {port: 0}}', '  type: null']),
      expect: [{ machine: { install: { disk: '/dev/sda', wipe: false }, features: { kubePrism: { port: 7445 } }, type: 'worker' } }],
    },
    {
      name: 'lists append (machine.certSANs, cluster.apiServer.certSANs)',
      base: y(['machine:', '  certSANs: [a.example]', 'cluster:', '  apiServer:', '    certSANs: [192.0.2.10]']),
      patch: y(['machine:', '  certSANs: [b.example]', 'cluster:', '  apiServer:', '    certSANs: [192.0.2.11]']),
      expect: [{ machine: { certSANs: ['a.example', 'b.example'] }, cluster: { apiServer: { certSANs: ['192.0.2.10', '192.0.2.11'] } } }],
    },
    {
      name: 'podSubnets and serviceSubnets are replaced, not appended',
      base: y(['cluster:', '  network:', '    podSubnets: [10.244.0.0/16]', '    serviceSubnets: [10.96.0.0/12]']),
      patch: y(['cluster:', '  network:', '    podSubnets: [10.32.0.0/12]', '    serviceSubnets: [10.112.0.0/12, fd00::/108]']),
      expect: [{ cluster: { network: { podSubnets: ['10.32.0.0/12'], serviceSubnets: ['10.112.0.0/12', 'fd00::/108'] } } }],
    },
    {
      name: 'auditPolicy is replaced as a whole',
      base: y(['cluster:', '  apiServer:', '    auditPolicy: {apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: Metadata}]}']),
      patch: y(['cluster:', '  apiServer:', '    auditPolicy: {rules: [{level: None}]}']),
      expect: [{ cluster: { apiServer: { auditPolicy: { rules: [{ level: 'None' }] } } } }],
    },
    {
      name: 'interfaces merge by interface name (their addresses append); new ones are appended',
      base: y(['machine:', '  network:', '    interfaces:', '      - interface: eth0', '        dhcp: true', '        addresses: [192.0.2.5/24]']),
      patch: y(['machine:', '  network:', '    interfaces:', '      - interface: eth0', '        addresses: [192.0.2.6/24]', '      - interface: eth1', '        dhcp: false']),
      expect: [
        {
          machine: {
            network: {
              interfaces: [
                { interface: 'eth0', dhcp: true, addresses: ['192.0.2.5/24', '192.0.2.6/24'] },
                { interface: 'eth1', dhcp: false },
              ],
            },
          },
        },
      ],
    },
    {
      name: 'interfaces merge by equal deviceSelector',
      base: y(['machine:', '  network:', '    interfaces:', '      - deviceSelector: {hardwareAddr: "52:54:*", driver: virtio_net}', '        dhcp: true']),
      patch: y(['machine:', '  network:', '    interfaces:', '      - deviceSelector: {driver: virtio_net, hardwareAddr: "52:54:*"}', '        mtu: 9000']),
      expect: [{ machine: { network: { interfaces: [{ deviceSelector: { hardwareAddr: '52:54:*', driver: 'virtio_net' }, dhcp: true, mtu: 9000 }] } } }],
    },
    {
      name: 'vlans inside an interface merge by vlanId',
      base: y(['machine:', '  network:', '    interfaces:', '      - interface: eth0', '        vlans: [{vlanId: 10, dhcp: true}]']),
      patch: y(['machine:', '  network:', '    interfaces:', '      - interface: eth0', '        vlans: [{vlanId: 10, mtu: 1400}, {vlanId: 20, dhcp: true}]']),
      expect: [{ machine: { network: { interfaces: [{ interface: 'eth0', vlans: [{ vlanId: 10, dhcp: true, mtu: 1400 }, { vlanId: 20, dhcp: true }] }] } } }],
    },
    {
      name: 'a list that is not a keyed list appends even when items look alike',
      base: y(['machine:', '  files: [{path: /a, op: create, content: x}]']),
      patch: y(['machine:', '  files: [{path: /a, op: create, content: x}]']),
      expect: [{ machine: { files: [{ path: '/a', op: 'create', content: 'x' }, { path: '/a', op: 'create', content: 'x' }] } }],
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(merged(c.base, c.patch), c.expect));
  }

  it('refuses to merge a list into a map', () => {
    assert.match(failure('machine:\n  network: {hostname: a}\n', 'machine:\n  network: [a]\n'), /machine\.network: cannot merge a list into a map/);
  });

  it('keeps comments of the base and of the patch', () => {
    const out = patch('machine:\n    # the disk\n    install:\n        disk: /dev/sda\n', 'machine:\n    install:\n        # wipe it\n        wipe: true\n');
    assert.ok(out.ok);
    assert.equal(out.text, 'machine:\n    # the disk\n    install:\n        disk: /dev/sda\n        # wipe it\n        wipe: true\n');
  });
});

describe('configserve multi-document matching', () => {
  const base = y([
    'apiVersion: v1alpha1',
    'kind: HostnameConfig',
    'auto: stable',
    '---',
    'version: v1alpha1',
    'machine: {type: worker}',
    '---',
    'apiVersion: v1alpha1',
    'kind: ExtensionServiceConfig',
    'name: foo',
    'environment: [A=1]',
    '---',
    'apiVersion: v1alpha1',
    'kind: ExtensionServiceConfig',
    'name: bar',
    'environment: [B=1]',
  ]);

  it('merges a v1alpha1 patch into the v1alpha1 document wherever it is', () => {
    const docs = merged(base, 'machine: {nodeLabels: {rack: r1}}\n');
    assert.deepEqual(docs[1], { version: 'v1alpha1', machine: { type: 'worker', nodeLabels: { rack: 'r1' } } });
    assert.equal(docs.length, 4);
  });

  it('matches named documents by kind and name', () => {
    const docs = merged(base, 'apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: bar\nenvironment: [C=2]\n');
    assert.deepEqual(docs[2], { apiVersion: 'v1alpha1', kind: 'ExtensionServiceConfig', name: 'foo', environment: ['A=1'] });
    assert.deepEqual(docs[3], { apiVersion: 'v1alpha1', kind: 'ExtensionServiceConfig', name: 'bar', environment: ['B=1', 'C=2'] });
  });

  it('appends documents with no match, in patch order', () => {
    const docs = merged(
      base,
      'apiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: 192.0.2.1:4002\n---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: baz\n',
    );
    assert.equal(docs.length, 6);
    assert.deepEqual(docs[4], { apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '192.0.2.1:4002' });
    assert.deepEqual(docs[5], { apiVersion: 'v1alpha1', kind: 'ExtensionServiceConfig', name: 'baz' });
  });

  it('merges configFiles of an ExtensionServiceConfig by mountPath', () => {
    const b = 'apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: foo\nconfigFiles: [{content: old, mountPath: /etc/foo}]\n';
    const docs = merged(b, 'apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: foo\nconfigFiles: [{content: new, mountPath: /etc/foo}, {content: x, mountPath: /etc/x}]\n');
    assert.deepEqual((docs[0] as Record<string, unknown>)['configFiles'], [
      { content: 'new', mountPath: '/etc/foo' },
      { content: 'x', mountPath: '/etc/x' },
    ]);
  });

  it('refuses a patch document with no kind', () => {
    assert.match(failure(base, 'foo: bar\n'), /no kind/);
  });
});

describe('configserve $patch: delete', () => {
  const config = y([
    'version: v1alpha1',
    'machine:',
    '  network:',
    '    hostname: hostname1',
    '    interfaces:',
    '      - interface: eth0',
    '        dhcp: true',
    '      - interface: eth1',
    '        addresses: [10.3.5.4/32]',
    '  nodeLabels:',
    '    node.kubernetes.io/exclude-from-external-load-balancers: ""',
    '    rack: r1',
    'cluster:',
    '  apiServer:',
    '    auditPolicy: {kind: Policy}',
    '    image: kube-apiserver',
    '---',
    'apiVersion: v1alpha1',
    'kind: SideroLinkConfig',
    'apiUrl: https://siderolink.example/join',
  ]);

  it('deletes a key, a list item and a document in one patch, then merges the rest', () => {
    const docs = merged(
      config,
      y([
        'apiVersion: v1alpha1',
        'kind: SideroLinkConfig',
        '$patch: delete',
        '---',
        'version: v1alpha1',
        'machine:',
        '  network:',
        '    hostname:',
        '      $patch: delete',
        '    interfaces:',
        '      - interface: eth0',
        '        $patch: delete',
        '      - interface: eth1',
        '        addresses: [10.3.5.5/32]',
        '      - interface: eth0',
        '        dummy: true',
      ]),
    );
    assert.equal(docs.length, 1, 'SideroLinkConfig is gone');
    assert.deepEqual((docs[0] as { machine: unknown }).machine, {
      network: {
        interfaces: [
          { interface: 'eth1', addresses: ['10.3.5.4/32', '10.3.5.5/32'] },
          { interface: 'eth0', dummy: true },
        ],
      },
      nodeLabels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '', rack: 'r1' },
    });
  });

  it('deletes a whole section and a label whose key has dots and a slash', () => {
    const docs = merged(
      config,
      y([
        'cluster:',
        '  apiServer:',
        '    auditPolicy:',
        '      $patch: delete',
        'machine:',
        '  nodeLabels:',
        '    node.kubernetes.io/exclude-from-external-load-balancers:',
        '      $patch: delete',
      ]),
    );
    const v = docs[0] as { cluster: unknown; machine: { nodeLabels: unknown } };
    assert.deepEqual(v.cluster, { apiServer: { image: 'kube-apiserver' } });
    assert.deepEqual(v.machine.nodeLabels, { rack: 'r1' });
  });

  const refused: [string, string, RegExp][] = [
    ['a path that does not exist', 'machine:\n  kubelet:\n    extraArgs:\n      $patch: delete\n', /lookup failed \(kubelet is missing\)/],
    ['a list item that does not exist', 'machine:\n  network:\n    interfaces:\n      - interface: eth9\n        $patch: delete\n', /no item with interface: eth9/],
    ['the root of the v1alpha1 document', 'version: v1alpha1\n$patch: delete\n', /can't delete the root of the v1alpha1 document/],
    ['a document the config does not have', 'apiVersion: v1alpha1\nkind: KmsgLogConfig\nname: x\n$patch: delete\n', /has no such document/],
    ['a directive other than delete', 'machine:\n  network:\n    $patch: replace\n', /unsupported \$patch directive/],
    ['a key inside a list item', 'machine:\n  network:\n    interfaces:\n      - interface: eth0\n        dhcp:\n          $patch: delete\n', /inside a list item/],
    ['a list item with nothing to name it', 'machine:\n  network:\n    interfaces:\n      - $patch: delete\n', /needs a key: value/],
  ];
  for (const [name, p, message] of refused) {
    it(`refuses to delete ${name}`, () => assert.match(failure(config, p), message));
  }
});

describe('configserve RFC 6902 JSON patch', () => {
  const single = y(['version: v1alpha1', 'machine:', '  type: worker', '  certSANs: [a, c]', '  files:', '    - path: /x', '      permissions: 0755', '  nodeLabels: {a~b: "1"}']);

  const cases: { name: string; ops: string; expect: unknown }[] = [
    {
      name: 'add a new key',
      ops: '- {op: add, path: /machine/install, value: {disk: /dev/sda}}',
      expect: { type: 'worker', certSANs: ['a', 'c'], files: [{ path: '/x', permissions: 0o755 }], nodeLabels: { 'a~b': '1' }, install: { disk: '/dev/sda' } },
    },
    { name: 'add to an existing key replaces it', ops: '- {op: add, path: /machine/type, value: controlplane}', expect: 'controlplane' },
    { name: 'add inserts at a list index', ops: '- {op: add, path: /machine/certSANs/1, value: b}', expect: ['a', 'b', 'c'] },
    { name: 'add appends with -', ops: '- {op: add, path: /machine/certSANs/-, value: d}', expect: ['a', 'c', 'd'] },
    { name: 'remove', ops: '- {op: remove, path: /machine/certSANs/0}', expect: ['c'] },
    { name: 'replace', ops: '- {op: replace, path: /machine/certSANs/1, value: z}', expect: ['a', 'z'] },
    { name: 'move', ops: '- {op: move, from: /machine/certSANs/0, path: /machine/certSANs/-}', expect: ['c', 'a'] },
    { name: 'copy', ops: '- {op: copy, from: /machine/certSANs/1, path: /machine/certSANs/0}', expect: ['c', 'a', 'c'] },
    {
      name: 'test then replace (0755 is octal 493, as Go reads it)',
      ops: '- {op: test, path: /machine/files/0/permissions, value: 493}\n- {op: replace, path: /machine/files/0/permissions, value: 420}',
      expect: [{ path: '/x', permissions: 420 }],
    },
    { name: '~1 escapes / in a key', ops: '- {op: add, path: /machine/nodeLabels/node.kubernetes.io~1role, value: x}', expect: { 'a~b': '1', 'node.kubernetes.io/role': 'x' } },
    { name: '~0 escapes ~ in a key', ops: '- {op: remove, path: /machine/nodeLabels/a~0b}', expect: {} },
    { name: 'a JSON text works too', ops: '[{"op": "replace", "path": "/machine/type", "value": "controlplane"}]', expect: 'controlplane' },
  ];
  const pick = (docs: unknown[], name: string): unknown => {
    const machine = (docs[0] as { machine: Record<string, unknown> }).machine;
    if (name.startsWith('add a new')) return machine;
    if (name.includes('type') || name.startsWith('add to') || name.startsWith('a JSON')) return machine['type'];
    if (name.includes('0755')) return machine['files'];
    if (name.includes('~')) return machine['nodeLabels'];
    return machine['certSANs'];
  };
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(pick(merged(single, c.ops), c.name), c.expect));
  }

  it('keeps the 0755 spelling of untouched values', () => {
    const out = patch(single, '- {op: add, path: /machine/certSANs/-, value: d}');
    assert.ok(out.ok);
    assert.match(out.text, /permissions: 0755/);
  });

  const refused: [string, string, RegExp][] = [
    ['a failing test, and applies nothing', '- {op: remove, path: /machine/certSANs}\n- {op: test, path: /machine/type, value: controlplane}', /operation 2 \(test \/machine\/type\): test failed: \/machine\/type does not hold the expected value/],
    ['a test of a missing path', '- {op: test, path: /machine/nope, value: 1}', /test failed: \/machine\/nope does not exist/],
    ['remove of a missing key', '- {op: remove, path: /machine/install}', /\/machine\/install does not exist/],
    ['replace of a missing key', '- {op: replace, path: /machine/install/disk, value: x}', /does not exist/],
    ['add under a missing parent', '- {op: add, path: /machine/install/disk, value: x}', /the parent of \/machine\/install\/disk does not exist/],
    ['an index past the end', '- {op: add, path: /machine/certSANs/5, value: x}', /index 5 is out of range/],
    ['a move into its own child', '- {op: move, from: /machine, path: /machine/x}', /cannot move \/machine into itself/],
    ['an unknown op', '- {op: merge, path: /machine}', /op must be one of/],
    ['a path that is not a pointer', '- {op: remove, path: machine}', /not a JSON pointer/],
    ['a bad ~ escape', '- {op: remove, path: /machine/a~2b}', /~ not followed by 0 or 1/],
    ['an add with no value', '- {op: add, path: /machine/x}', /add needs a value/],
  ];
  for (const [name, ops, message] of refused) {
    it(`refuses ${name}`, () => assert.match(failure(single, ops), message));
  }

  it('refuses JSON patches on a multi-document config (every gen-config output since Talos 1.12)', () => {
    const multi = `${single}---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n`;
    assert.equal(
      failure(multi, '- {op: add, path: /machine/install, value: {disk: /dev/sda}}'),
      'JSON6902 patches are not supported for multi-document machine configuration',
    );
  });
});
