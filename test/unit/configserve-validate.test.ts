// What Talos would reject (protocols.md §3.1–3.4), one worked example per rule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyPatch, parsePatch } from '../../src/configserve/patch.ts';
import { validateTalosConfig } from '../../src/configserve/validate.ts';
import { parseYamlDocuments, stringifyDocuments } from '../../src/configserve/yaml.ts';
import { CONTROLPLANE, EC_KEY, OS_KEY, RSA_KEY, WORKER, WORKER_114 } from './configserve-fixtures.ts';

/** The config with strategic patches applied (the fixtures are edited the way an operator would). */
function edit(base: string, ...patches: string[]): string {
  const { docs } = parseYamlDocuments(base);
  for (const text of patches) {
    const p = parsePatch(text);
    assert.ok('patch' in p, `test patch parses: ${JSON.stringify(p)}`);
    assert.deepEqual(applyPatch(docs, p.patch), []);
  }
  return stringifyDocuments(docs);
}

const HOSTNAME_DOC = '---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n';

describe('configserve validation', () => {
  it('accepts gen-config shaped controlplane and worker configs', () => {
    assert.deepEqual(validateTalosConfig(CONTROLPLANE), []);
    assert.deepEqual(validateTalosConfig(WORKER), []);
  });

  const rejected: { name: string; config: () => string; message: RegExp }[] = [
    { name: 'no v1alpha1 document', config: () => HOSTNAME_DOC.slice(4), message: /no v1alpha1 document .*maintenance/ },
    { name: 'an empty config', config: () => '', message: /no v1alpha1 document/ },
    {
      name: 'no control-plane endpoint',
      config: () => edit(WORKER, 'cluster:\n  controlPlane:\n    endpoint:\n      $patch: delete\n'),
      message: /cluster\.controlPlane\.endpoint is missing/,
    },
    {
      name: 'an endpoint that is not a URL',
      config: () => edit(WORKER, 'cluster:\n  controlPlane:\n    endpoint: 192.0.2.10:6443\n'),
      message: /192\.0\.2\.10:6443 is not an http\(s\) URL/,
    },
    { name: 'a worker with machine.ca.key', config: () => edit(WORKER, `machine:\n  ca:\n    key: ${OS_KEY}\n`), message: /worker config must not carry machine\.ca\.key/ },
    { name: 'a worker with cluster.ca.key', config: () => edit(WORKER, `cluster:\n  ca:\n    key: ${EC_KEY}\n`), message: /worker config must not carry cluster\.ca\.key/ },
    {
      name: 'a worker with the aggregator CA key',
      config: () => edit(WORKER, `cluster:\n  aggregatorCA:\n    key: ${EC_KEY}\n`),
      message: /must not carry cluster\.aggregatorCA\.key/,
    },
    {
      name: 'a worker with the service-account key',
      config: () => edit(WORKER, `cluster:\n  serviceAccount:\n    key: ${RSA_KEY}\n`),
      message: /must not carry cluster\.serviceAccount\.key/,
    },
    {
      name: 'a worker with an etcd section',
      config: () => edit(WORKER, `cluster:\n  etcd:\n    ca:\n      key: ${EC_KEY}\n`),
      message: /worker config must not have a cluster\.etcd section/,
    },
    {
      name: 'a controlplane without machine.ca.key',
      config: () => edit(CONTROLPLANE, 'machine:\n  ca:\n    key:\n      $patch: delete\n'),
      message: /controlplane config needs machine\.ca\.key/,
    },
    {
      name: 'neither install disk nor disk selector',
      config: () => edit(WORKER, 'machine:\n  install:\n    disk:\n      $patch: delete\n'),
      message: /machine\.install needs disk or diskSelector/,
    },
    {
      name: 'machine.install beside an UnattendedInstallConfig (Talos 1.14)',
      config: () => edit(WORKER_114, 'machine:\n  install:\n    disk: /dev/sda\n'),
      message: /machine\.install cannot be used together with an UnattendedInstallConfig/,
    },
    {
      name: 'an UnattendedInstallConfig without a disk selector',
      config: () => edit(WORKER_114, 'apiVersion: v1alpha1\nkind: UnattendedInstallConfig\nprovisioning:\n  diskSelector:\n    match:\n      $patch: delete\n'),
      message: /UnattendedInstallConfig: provisioning\.diskSelector\.match \(a CEL expression\) is required/,
    },
    { name: 'a bool that is not one', config: () => edit(WORKER, 'machine:\n  install:\n    wipe: maybe\n'), message: /machine\.install\.wipe must be true or false/ },
    { name: 'a string where a list belongs', config: () => edit(WORKER, 'machine:\n  network:\n    nameservers: 192.0.2.53\n'), message: /nameservers must be a list of strings/ },
    { name: 'a list in a label value', config: () => edit(WORKER, 'machine:\n  nodeLabels:\n    rack: [r1]\n'), message: /nodeLabels must be a map of strings/ },
    { name: 'a port that is not a number', config: () => edit(WORKER, 'cluster:\n  controlPlane:\n    localAPIServerPort: "x"\n'), message: /localAPIServerPort must be an integer/ },
    { name: 'a machine section that is a list', config: () => `machine: []\ncluster: {}\n${HOSTNAME_DOC}`, message: /^v1alpha1: machine must be a map$/m },
    { name: 'a misspelt field', config: () => edit(WORKER, 'machine:\n  instal:\n    disk: /dev/sda\n'), message: /unknown field machine\.instal$/m },
    { name: 'an unknown machine type', config: () => edit(WORKER, 'machine:\n  type: workr\n'), message: /machine\.type workr is not one of init, controlplane, worker/ },
    { name: 'a document twice', config: () => `${WORKER}${HOSTNAME_DOC}`, message: /HostnameConfig appears more than once/ },
    { name: 'a HostnameConfig with both auto and hostname', config: () => edit(WORKER, 'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: w1\n'), message: /exactly one of auto and hostname/ },
    {
      name: 'a hostname in both places',
      config: () => edit(WORKER, 'machine:\n  network:\n    hostname: w1\n'),
      message: /HostnameConfig: conflicts with machine\.network\.hostname/,
    },
    { name: 'a bad hostname', config: () => WORKER.replace('auto: stable', 'hostname: w_1'), message: /hostname must be letters, digits/ },
    {
      name: 'a disk selector size that is not a size',
      config: () => edit(WORKER, 'machine:\n  install:\n    diskSelector:\n      size: big\n'),
      message: /diskSelector\.size big is not a size/,
    },
    { name: 'a disk selector of an unknown type', config: () => edit(WORKER, 'machine:\n  install:\n    diskSelector:\n      type: tape\n'), message: /diskSelector\.type tape/ },
    {
      name: 'extraKernelArgs with grubUseUKICmdline',
      config: () => edit(WORKER, 'machine:\n  install:\n    extraKernelArgs: [console=ttyS0]\n'),
      message: /extraKernelArgs cannot be used with grubUseUKICmdline/,
    },
    { name: 'a label key Kubernetes refuses', config: () => edit(WORKER, 'machine:\n  nodeLabels:\n    "-bad": x\n'), message: /nodeLabels "-bad": the key name/ },
    { name: 'duplicate keys', config: () => 'machine: {}\nmachine: {}\n', message: /unique/ },
    {
      name: 'an event sink with no endpoint',
      config: () => `${WORKER}---\napiVersion: v1alpha1\nkind: EventSinkConfig\n`,
      message: /v1alpha1\/EventSinkConfig: endpoint \(host:port\) is required/,
    },
    {
      name: 'a kernel log sink with an http URL',
      config: () => `${WORKER}---\napiVersion: v1alpha1\nkind: KmsgLogConfig\nname: heph\nurl: http://192.0.2.1:4003\n`,
      message: /KmsgLogConfig "heph": url must be tcp/,
    },
  ];
  for (const r of rejected) {
    it(`rejects ${r.name}`, () => assert.match(validateTalosConfig(r.config()).join('\n'), r.message));
  }

  const accepted: { name: string; config: () => string }[] = [
    {
      name: 'a disk selector instead of a disk',
      config: () => edit(WORKER, 'machine:\n  install:\n    disk:\n      $patch: delete\n    diskSelector:\n      size: ">= 100GB"\n      type: nvme\n'),
    },
    { name: 'an UnattendedInstallConfig instead of machine.install (Talos 1.14)', config: () => WORKER_114 },
    { name: 'a Go 1.1-style bool (wipe: yes)', config: () => edit(WORKER, 'machine:\n  install:\n    wipe: yes\n') },
    { name: 'a worker with an empty CA key', config: () => WORKER },
    { name: 'a hostname in v1alpha1 with no HostnameConfig', config: () => edit(WORKER, 'apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n', 'machine:\n  network:\n    hostname: w1\n') },
    { name: 'labels with prefixes and empty values', config: () => edit(WORKER, 'machine:\n  nodeLabels:\n    topology.kubernetes.io/zone: z-1\n    example.com/empty: ""\n') },
  ];
  for (const a of accepted) {
    it(`accepts ${a.name}`, () => assert.deepEqual(validateTalosConfig(a.config()), []));
  }
});
