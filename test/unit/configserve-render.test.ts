import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { renderConfig, type RenderInput, type RenderResult } from '../../src/configserve/render.ts';
import { feedbackDocuments } from '../../src/events/talos-docs.ts';
import { validateTalosConfig } from '../../src/configserve/validate.ts';
import { parseYamlDocuments, toPlain } from '../../src/configserve/yaml.ts';
import { CONTROLPLANE, EC_KEY, OS_KEY, RSA_KEY, WORKER, WORKER_114, WORKER_SINGLE } from './configserve-fixtures.ts';

type Doc = Record<string, unknown> & { machine?: Record<string, Record<string, unknown>> };

function rendered(input: RenderInput): { yaml: string; docs: Doc[] } {
  const result = renderConfig(input);
  assert.ok(result.ok, `renders: ${result.ok ? '' : result.errors.join('; ')}`);
  const { docs, errors } = parseYamlDocuments(result.yaml);
  assert.deepEqual(errors, []);
  assert.equal(result.sha256, createHash('sha256').update(result.yaml).digest('hex'));
  return { yaml: result.yaml, docs: docs.map((d) => toPlain(d.contents) as Doc) };
}

function refused(input: RenderInput): string {
  const result = renderConfig(input);
  assert.ok(!result.ok, 'must be refused');
  assert.ok(result.errors.length > 0);
  return result.errors.join('\n');
}

const byKind = (docs: Doc[], kind: string): Doc | undefined => docs.find((d) => d['kind'] === kind);
const legacy = (docs: Doc[]): Doc => docs.find((d) => d['kind'] === undefined) as Doc;

const EVENT_SINK = 'apiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: 192.0.2.1:4002\n';
const KMSG = 'apiVersion: v1alpha1\nkind: KmsgLogConfig\nname: heph\nurl: tcp://192.0.2.1:4003\n';

describe('configserve renderConfig', () => {
  const realistic: RenderInput = {
    base: CONTROLPLANE,
    patches: [
      // a multi-document strategic patch: network for the v1alpha1 document, and a whole new document
      'machine:\n  network:\n    interfaces:\n      - deviceSelector: {physical: true}\n        dhcp: true\n  files:\n    - path: /var/etc/x.conf\n      permissions: 0644\n      op: create\n      content: "on"\n---\napiVersion: v1alpha1\nkind: ResolverConfig\nnameservers: [{address: 192.0.2.53}]\n',
      'cluster:\n  network:\n    podSubnets: [10.32.0.0/12]\n  apiServer:\n    certSANs: [api.lab.example]\n',
    ],
    machine: { hostname: 'cp-1', installDisk: '/dev/nvme0n1', labels: { 'topology.kubernetes.io/zone': 'z1', rack: 'r7' } },
    extraDocuments: [EVENT_SINK, KMSG],
  };

  it('renders a gen-config controlplane with profile patches, extra documents and the machine facts', () => {
    const { yaml, docs } = rendered(realistic);
    const v1 = legacy(docs);
    assert.equal(v1.machine?.['install']?.['disk'], '/dev/nvme0n1');
    assert.deepEqual(v1.machine?.['nodeLabels'], {
      'node.kubernetes.io/exclude-from-external-load-balancers': '',
      rack: 'r7',
      'topology.kubernetes.io/zone': 'z1',
    });
    assert.deepEqual(v1.machine?.['network'], { interfaces: [{ deviceSelector: { physical: true }, dhcp: true }] });
    const cluster = v1['cluster'] as { network: { podSubnets: string[] }; apiServer: { certSANs: string[] } };
    assert.deepEqual(cluster.network.podSubnets, ['10.32.0.0/12']);
    assert.deepEqual(cluster.apiServer.certSANs, ['192.0.2.10', 'api.lab.example']);
    assert.deepEqual(byKind(docs, 'HostnameConfig'), { apiVersion: 'v1alpha1', kind: 'HostnameConfig', hostname: 'cp-1' });
    assert.ok(byKind(docs, 'ResolverConfig'));
    assert.deepEqual(byKind(docs, 'EventSinkConfig'), { apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '192.0.2.1:4002' });
    assert.ok(byKind(docs, 'KmsgLogConfig'));
    assert.deepEqual(
      docs.map((d) => d['kind'] ?? 'v1alpha1'),
      ['v1alpha1', 'HostnameConfig', 'ResolverConfig', 'EventSinkConfig', 'KmsgLogConfig'],
    );
    // what the user wrote survives: comments, an octal file mode, a quoted "on"
    assert.match(yaml, /^version: v1alpha1 # Indicates the schema used to decode the contents\.$/m);
    assert.match(yaml, /^ *permissions: 0644$/m);
    assert.match(yaml, /^ *content: "on"$/m);
  });

  it('is deterministic: same input, same bytes and sha256', () => {
    const a = renderConfig(realistic);
    const b = renderConfig(structuredClone(realistic));
    assert.ok(a.ok && b.ok);
    assert.equal(a.yaml, b.yaml);
    assert.equal(a.sha256, b.sha256);
  });

  it('machines rendered from the same profile never see each other\'s facts (the shared template stays untouched)', () => {
    const first = rendered({ ...realistic, machine: { hostname: 'cp-2', installDisk: '/dev/sdb', labels: { rack: 'r9' } } });
    const plain = rendered({ ...realistic, machine: {} });
    const again = rendered({ ...realistic, machine: { hostname: 'cp-3', labels: {} } });
    assert.deepEqual(byKind(first.docs, 'HostnameConfig'), { apiVersion: 'v1alpha1', kind: 'HostnameConfig', hostname: 'cp-2' });
    assert.doesNotMatch(plain.yaml, /cp-2|r9|\/dev\/sdb/);
    assert.equal(legacy(plain.docs).machine?.['install']?.['disk'], legacy(rendered({ base: CONTROLPLANE, patches: [] }).docs).machine?.['install']?.['disk']);
    assert.doesNotMatch(again.yaml, /cp-2|r9|\/dev\/sdb/);
    assert.deepEqual(byKind(again.docs, 'HostnameConfig'), { apiVersion: 'v1alpha1', kind: 'HostnameConfig', hostname: 'cp-3' });
    // The same input after others: the same bytes as the first time.
    assert.equal(rendered(realistic).yaml, rendered(structuredClone(realistic)).yaml);
    // An edited profile is a new template: the edit shows at once.
    const edited = rendered({ ...realistic, patches: [...realistic.patches, 'machine:\n  kubelet:\n    image: example.test/kubelet:v9\n'] });
    assert.equal((legacy(edited.docs).machine?.['kubelet'] as { image: string }).image, 'example.test/kubelet:v9');
  });

  it('a refused template stays refused, and many profiles in turn render each their own', () => {
    const bad: RenderInput = { base: WORKER, patches: ['machine: [\n'] };
    assert.match(refused(bad), /^patch 1: YAML: /);
    assert.match(refused(bad), /^patch 1: YAML: /);
    // More distinct profiles than the cache holds, twice over: each render still reflects its own input.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 40; i++) {
        const { docs } = rendered({ base: WORKER, patches: [`machine:\n  nodeLabels:\n    profile: p${i}\n`], machine: { labels: {} } });
        assert.equal((legacy(docs).machine?.['nodeLabels'] as Record<string, string>)['profile'], `p${i}`);
      }
    }
  });

  it('does not depend on the order of label keys', () => {
    const one = renderConfig({ base: WORKER, patches: [], machine: { labels: { b: '1', a: '2' } } });
    const two = renderConfig({ base: WORKER, patches: [], machine: { labels: { a: '2', b: '1' } } });
    assert.ok(one.ok && two.ok);
    assert.equal(one.sha256, two.sha256);
  });

  it('puts the hostname in machine.network.hostname when there is no HostnameConfig (before Talos 1.12)', () => {
    const { docs } = rendered({ base: WORKER_SINGLE, patches: [], machine: { hostname: 'w-1' } });
    assert.equal(docs.length, 1);
    assert.deepEqual(legacy(docs).machine?.['network'], { hostname: 'w-1' });
  });

  it('quotes machine facts a YAML 1.1 reader would misread', () => {
    const { yaml } = rendered({ base: WORKER, patches: [], machine: { labels: { rack: 'on', slot: '0755' } } });
    assert.match(yaml, /^ *rack: "on"$/m);
    assert.match(yaml, /^ *slot: "0755"$/m);
  });

  it('a disk given for the machine drops the profile selector; a selector given replaces it', () => {
    const base = WORKER.replace('disk: /dev/sda', 'diskSelector:\n            size: ">= 100GB"\n            type: ssd');
    const disk = legacy(rendered({ base, patches: [], machine: { installDisk: '/dev/sdb' } }).docs).machine?.['install'];
    assert.equal(disk?.['disk'], '/dev/sdb');
    assert.equal(disk?.['diskSelector'], undefined);
    const sel = legacy(rendered({ base, patches: [], machine: { installDiskSelector: { serial: 'S3Z9NB0K', size: '<= 2TB' } } }).docs).machine?.['install'];
    assert.deepEqual(sel?.['diskSelector'], { serial: 'S3Z9NB0K', size: '<= 2TB' });
  });

  it('puts the install disk into the UnattendedInstallConfig selector on a Talos 1.14 base', () => {
    const { docs } = rendered({ base: WORKER_114, patches: [], machine: { installDisk: '/dev/nvme0n1' } });
    assert.equal(legacy(docs).machine?.['install'], undefined);
    assert.deepEqual((byKind(docs, 'UnattendedInstallConfig') as { provisioning: unknown }).provisioning, {
      diskSelector: { match: 'disk.dev_path == "/dev/nvme0n1"' },
      wipe: false,
    });
    assert.match(
      refused({ base: WORKER_114, patches: [], machine: { installDiskSelector: { size: '>= 100GB' } } }),
      /^machine: a disk selector cannot be applied to an UnattendedInstallConfig/,
    );
    assert.match(refused({ base: WORKER_114, patches: [], machine: { installDisk: '/dev/sda" || true' } }), /is not a device path/);
  });

  it('an extra document replaces one of the same kind and name', () => {
    const base = `${WORKER}---\n${EVENT_SINK}`;
    const { docs } = rendered({ base, patches: [], extraDocuments: [EVENT_SINK.replace('192.0.2.1', '192.0.2.9')] });
    const sinks = docs.filter((d) => d['kind'] === 'EventSinkConfig');
    assert.deepEqual(sinks, [{ apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '192.0.2.9:4002' }]);
  });

  it('accepts the event-sink and kernel-log documents the events module makes', () => {
    const extra = feedbackDocuments({ grpc: 4002, kmsg: 4003 }, '192.0.2.1');
    const { docs } = rendered({ base: WORKER, patches: [], extraDocuments: extra });
    assert.equal(byKind(docs, 'EventSinkConfig')?.['endpoint'], '192.0.2.1:4002');
    assert.equal(byKind(docs, 'KmsgLogConfig')?.['url'], 'tcp://192.0.2.1:4003/');
  });

  it('applies a JSON patch to a single-document base', () => {
    const { docs } = rendered({ base: WORKER_SINGLE, patches: ['- {op: replace, path: /machine/install/disk, value: /dev/vda}'] });
    assert.equal(legacy(docs).machine?.['install']?.['disk'], '/dev/vda');
  });

  const failures: { name: string; input: RenderInput; message: RegExp }[] = [
    { name: 'a JSON patch on the multi-document base', input: { base: WORKER, patches: ['- {op: remove, path: /debug}'] }, message: /^patch 1: JSON6902 patches are not supported for multi-document/ },
    { name: 'a patch that does not parse, naming which', input: { base: WORKER, patches: ['machine: {}\n', 'machine: [\n'] }, message: /^patch 2: YAML: / },
    { name: 'a base that does not parse', input: { base: 'machine:\n  a: 1\n  a: 2\n', patches: [] }, message: /^base config: YAML: Map keys must be unique/ },
    { name: 'a patch that makes a worker carry etcd', input: { base: WORKER, patches: ['cluster:\n  etcd:\n    ca: {crt: x}\n'] }, message: /worker config must not have a cluster\.etcd section/ },
    { name: 'a bad hostname', input: { base: WORKER, patches: [], machine: { hostname: 'bad_name!' } }, message: /^machine: hostname "bad_name!" must be/ },
    { name: 'a hostname that tries to inject YAML', input: { base: WORKER, patches: [], machine: { hostname: 'a\n  evil: true' } }, message: /^machine: hostname .* must be/ },
    { name: 'a label that tries to inject YAML', input: { base: WORKER, patches: [], machine: { labels: { rack: 'r1\n    type: controlplane' } } }, message: /nodeLabels "rack": the value must be/ },
    { name: 'an install disk that tries to inject YAML', input: { base: WORKER, patches: [], machine: { installDisk: '/dev/sda\n    wipe: true' } }, message: /machine\.install\.disk .* is not a device path/ },
    { name: 'a v1alpha1 extra document', input: { base: WORKER, patches: [], extraDocuments: ['machine: {}\n'] }, message: /^extra document 1: the v1alpha1 document cannot be replaced/ },
    { name: 'a base without v1alpha1 for machine facts', input: { base: 'apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n', patches: [], machine: { hostname: 'a' } }, message: /no v1alpha1 document/ },
  ];
  for (const f of failures) {
    it(`refuses ${f.name}`, () => assert.match(refused(f.input), f.message));
  }
});

describe('configserve renderConfig properties', () => {
  const keys = fc.constantFrom(
    'machine', 'cluster', 'network', 'install', 'disk', 'diskSelector', 'interfaces', 'interface', 'vlans', 'vlanId',
    'certSANs', 'nodeLabels', 'hostname', 'type', 'etcd', 'ca', 'key', 'podSubnets', '$patch', 'kind', 'apiVersion',
    'name', 'version', 'auto', 'controlPlane', 'endpoint',
  );
  const leaf = fc.oneof(
    fc.constantFrom('delete', 'worker', 'controlplane', '0755', 'on', 'v1alpha1', 'HostnameConfig', '', '/dev/sda', 'https://192.0.2.10:6443'),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
  );
  const value = fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(keys, tie('node'), { maxKeys: 4 })),
  })).node;
  const strategic = fc.array(fc.dictionary(keys, value, { maxKeys: 4 }), { minLength: 1, maxLength: 3 }).map((docs) =>
    docs.map((d) => JSON.stringify(d)).join('\n---\n'),
  );
  const pointer = fc.constantFrom('', '/machine', '/machine/type', '/machine/certSANs/-', '/machine/certSANs/0', '/cluster/network/podSubnets/0', '/a~1b', '/x~0', '/machine/install/disk', '/machine/ca/key', '/cluster/serviceAccount/key', 'bad', '/~2');
  const jsonPatch = fc
    .array(fc.record({ op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', 'nope'), path: pointer, from: pointer, value }), { maxLength: 4 })
    .map((ops) => JSON.stringify(ops));
  const patchText = fc.oneof(strategic, jsonPatch, fc.string({ maxLength: 40 }));
  const facts = fc.record(
    { hostname: fc.string({ maxLength: 20 }), installDisk: fc.string({ maxLength: 10 }), labels: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }) },
    { requiredKeys: [] },
  );

  it('never throws; returns ok with a valid, hashed config, or errors', () => {
    fc.assert(
      fc.property(fc.constantFrom(WORKER, WORKER_SINGLE, WORKER_114, CONTROLPLANE), fc.array(patchText, { maxLength: 3 }), facts, (base, patches, machine) => {
        const input: RenderInput = { base, patches, machine: machine as RenderInput['machine'] & object };
        let result: RenderResult | undefined;
        assert.doesNotThrow(() => {
          result = renderConfig(input);
        });
        assert.ok(result !== undefined);
        if (result.ok) {
          assert.deepEqual(validateTalosConfig(result.yaml), []);
          assert.equal(result.sha256, createHash('sha256').update(result.yaml).digest('hex'));
          const again = renderConfig(input);
          assert.ok(again.ok && again.yaml === result.yaml, 'deterministic');
        } else {
          assert.ok(result.errors.length > 0 && result.errors.every((e) => typeof e === 'string' && e.length > 0));
          assert.ok(result.errors.every((e) => !e.startsWith('internal error')), result.errors.join('; '));
          // errors get logged: never a key from the config in them
          assert.ok(result.errors.every((e) => ![OS_KEY, EC_KEY, RSA_KEY].some((k) => e.includes(k))), 'no secret in errors');
        }
      }),
      { numRuns: 300 },
    );
  });
});
