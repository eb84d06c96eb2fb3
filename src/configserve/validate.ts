// What Talos would reject in a machine config (protocols.md §3.1, §3.2, §3.4; v1alpha1_validation.go), checked
// before a config is ever served: a rejected config leaves a machine retrying or parked in maintenance.
import type { Document } from 'yaml';
import { describeDoc, documentId, isLegacy, sameDoc, type DocId } from './documents.ts';
import { parseYamlDocuments, toPlain } from './yaml.ts';

type Plain = unknown;
type Obj = Record<string, Plain>;

const isObj = (v: Plain): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Go (yaml.v3) accepts these spellings for a bool field. */
const GO_BOOL_WORDS = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 'on', 'On', 'ON', 'off', 'Off', 'OFF']);

type FieldType = 'map' | 'list' | 'string' | 'bool' | 'int' | 'strings' | 'stringMap';

/** Field types of the v1alpha1 document that matter for booting; Go would refuse to decode anything else. */
const V1ALPHA1_TYPES: Record<string, FieldType> = {
  version: 'string',
  debug: 'bool',
  persist: 'bool',
  machine: 'map',
  'machine.type': 'string',
  'machine.token': 'string',
  'machine.ca': 'map',
  'machine.ca.crt': 'string',
  'machine.ca.key': 'string',
  'machine.certSANs': 'strings',
  'machine.kubelet': 'map',
  'machine.network': 'map',
  'machine.network.hostname': 'string',
  'machine.network.interfaces': 'list',
  'machine.network.nameservers': 'strings',
  'machine.install': 'map',
  'machine.install.disk': 'string',
  'machine.install.diskSelector': 'map',
  'machine.install.image': 'string',
  'machine.install.wipe': 'bool',
  'machine.install.extraKernelArgs': 'strings',
  'machine.install.legacyBIOSSupport': 'bool',
  'machine.install.grubUseUKICmdline': 'bool',
  'machine.files': 'list',
  'machine.env': 'stringMap',
  'machine.sysctls': 'stringMap',
  'machine.sysfs': 'stringMap',
  'machine.features': 'map',
  'machine.nodeLabels': 'stringMap',
  'machine.nodeAnnotations': 'stringMap',
  'machine.nodeTaints': 'stringMap',
  cluster: 'map',
  'cluster.id': 'string',
  'cluster.secret': 'string',
  'cluster.clusterName': 'string',
  'cluster.token': 'string',
  'cluster.controlPlane': 'map',
  'cluster.controlPlane.endpoint': 'string',
  'cluster.controlPlane.localAPIServerPort': 'int',
  'cluster.network': 'map',
  'cluster.network.dnsDomain': 'string',
  'cluster.network.podSubnets': 'strings',
  'cluster.network.serviceSubnets': 'strings',
  'cluster.ca': 'map',
  'cluster.aggregatorCA': 'map',
  'cluster.serviceAccount': 'map',
  'cluster.etcd': 'map',
  'cluster.apiServer': 'map',
  'cluster.apiServer.certSANs': 'strings',
  'cluster.allowSchedulingOnControlPlanes': 'bool',
  'cluster.extraManifests': 'strings',
  'cluster.inlineManifests': 'list',
};

/** Keys Talos v1.13 knows (protocols.md §3.1); the decoder rejects unknown keys. */
const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': ['version', 'debug', 'persist', 'machine', 'cluster'],
  machine: [
    'type', 'token', 'ca', 'acceptedCAs', 'certSANs', 'controlPlane', 'kubelet', 'pods', 'network', 'disks', 'install',
    'files', 'env', 'time', 'sysctls', 'sysfs', 'registries', 'systemDiskEncryption', 'features', 'udev', 'logging',
    'kernel', 'seccompProfiles', 'baseRuntimeSpecOverrides', 'nodeLabels', 'nodeAnnotations', 'nodeTaints',
  ],
  cluster: [
    'id', 'secret', 'controlPlane', 'clusterName', 'network', 'token', 'aescbcEncryptionSecret',
    'secretboxEncryptionSecret', 'ca', 'acceptedCAs', 'aggregatorCA', 'serviceAccount', 'apiServer',
    'controllerManager', 'proxy', 'scheduler', 'discovery', 'etcd', 'coreDNS', 'externalCloudProvider',
    'extraManifests', 'extraManifestHeaders', 'inlineManifests', 'adminKubeconfig', 'allowSchedulingOnControlPlanes',
  ],
  'machine.install': [
    'disk', 'diskSelector', 'extraKernelArgs', 'image', 'extensions', 'bootloader', 'wipe', 'legacyBIOSSupport',
    'grubUseUKICmdline',
  ],
  'machine.install.diskSelector': ['size', 'name', 'model', 'serial', 'modalias', 'uuid', 'wwid', 'type', 'busPath'],
};

const MACHINE_TYPES = ['init', 'controlplane', 'worker'];
const DISK_TYPES = ['ssd', 'hdd', 'nvme', 'sd'];
/** `size` selector: an optional comparison and a byte size (humanize-style units). */
const DISK_SIZE = /^\s*(?:>=|<=|==|>|<)?\s*\d+(?:\.\d+)?\s*(?:[kmgtpe]i?b?|b)?\s*$/i;

function get(obj: Plain, path: string): Plain {
  let node = obj;
  for (const key of path.split('.')) {
    if (!isObj(node)) return undefined;
    node = node[key];
  }
  return node;
}

const present = (v: Plain): boolean => v !== undefined && v !== null && v !== '';

function typeProblem(value: Plain, type: FieldType): string | undefined {
  if (value === null || value === undefined) return undefined;
  const scalar = typeof value !== 'object';
  switch (type) {
    case 'map':
      return isObj(value) ? undefined : 'must be a map';
    case 'list':
      return Array.isArray(value) ? undefined : 'must be a list';
    case 'string':
      return scalar ? undefined : 'must be a string';
    case 'bool':
      return typeof value === 'boolean' || (typeof value === 'string' && GO_BOOL_WORDS.has(value)) ? undefined : 'must be true or false';
    case 'int':
      return Number.isInteger(value) ? undefined : 'must be an integer';
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null) ? undefined : 'must be a list of strings';
    case 'stringMap':
      return isObj(value) && Object.values(value).every((v) => typeof v !== 'object' || v === null)
        ? undefined
        : 'must be a map of strings';
  }
}

function checkV1alpha1(cfg: Obj, hasUnattendedInstall: boolean): string[] {
  const errors: string[] = [];
  for (const [path, type] of Object.entries(V1ALPHA1_TYPES)) {
    const problem = typeProblem(get(cfg, path), type);
    if (problem !== undefined) errors.push(`${path} ${problem}`);
  }
  for (const [path, keys] of Object.entries(KNOWN_KEYS)) {
    const section = path === '' ? cfg : get(cfg, path);
    if (!isObj(section)) continue;
    for (const key of Object.keys(section)) {
      if (!keys.includes(key)) errors.push(`unknown field ${path === '' ? key : `${path}.${key}`}`);
    }
  }
  if (errors.length > 0) return errors;

  const version = get(cfg, 'version');
  if (present(version) && version !== 'v1alpha1') errors.push(`version must be v1alpha1, not ${String(version)}`);
  if (!isObj(cfg['machine'])) errors.push('machine section is missing');
  if (!isObj(cfg['cluster'])) errors.push('cluster section is missing');

  const type = get(cfg, 'machine.type');
  if (!present(type)) errors.push('machine.type is missing (controlplane or worker)');
  else if (!MACHINE_TYPES.includes(String(type))) errors.push(`machine.type ${String(type)} is not one of ${MACHINE_TYPES.join(', ')}`);

  const endpoint = get(cfg, 'cluster.controlPlane.endpoint');
  if (!present(endpoint)) errors.push('cluster.controlPlane.endpoint is missing (the Kubernetes API URL, e.g. https://10.0.0.10:6443)');
  else if (!isHttpUrl(String(endpoint))) errors.push(`cluster.controlPlane.endpoint ${String(endpoint)} is not an http(s) URL`);

  const install = get(cfg, 'machine.install');
  if (hasUnattendedInstall && isObj(install) && Object.keys(install).length > 0) {
    errors.push('machine.install cannot be used together with an UnattendedInstallConfig document (Talos 1.14)');
  }
  if (!hasUnattendedInstall && !present(get(cfg, 'machine.install.disk')) && !isObj(get(cfg, 'machine.install.diskSelector'))) {
    errors.push('machine.install needs disk or diskSelector (Talos must know where to install)');
  }
  const disk = get(cfg, 'machine.install.disk');
  if (present(disk) && !/^\/[^\s\p{Cc}]+$/u.test(String(disk))) {
    errors.push(`machine.install.disk ${JSON.stringify(disk)} is not a device path like /dev/sda`);
  }
  const size = get(cfg, 'machine.install.diskSelector.size');
  if (present(size) && !DISK_SIZE.test(String(size))) {
    errors.push(`machine.install.diskSelector.size ${String(size)} is not a size like ">= 100GB"`);
  }
  const diskType = get(cfg, 'machine.install.diskSelector.type');
  if (present(diskType) && !DISK_TYPES.includes(String(diskType))) {
    errors.push(`machine.install.diskSelector.type ${String(diskType)} is not one of ${DISK_TYPES.join(', ')}`);
  }
  if (present(get(cfg, 'machine.install.extraKernelArgs')) && isTrue(get(cfg, 'machine.install.grubUseUKICmdline'))) {
    errors.push('machine.install.extraKernelArgs cannot be used with grubUseUKICmdline: true');
  }

  if (type === 'worker') {
    const secrets = ['machine.ca.key', 'cluster.ca.key', 'cluster.aggregatorCA.key', 'cluster.serviceAccount.key'];
    for (const path of secrets) {
      if (present(get(cfg, path))) errors.push(`a worker config must not carry ${path} (a CA private key)`);
    }
    if (get(cfg, 'cluster.etcd') != null) errors.push('a worker config must not have a cluster.etcd section (it would carry the etcd CA)');
  }
  const labels = get(cfg, 'machine.nodeLabels');
  if (isObj(labels)) {
    for (const [key, value] of Object.entries(labels)) {
      const problem = labelProblem(key, value === null ? '' : String(value));
      if (problem !== undefined) errors.push(`machine.nodeLabels ${JSON.stringify(key)}: ${problem}`);
    }
  }
  if ((type === 'controlplane' || type === 'init') && !present(get(cfg, 'machine.ca.key'))) {
    errors.push(`a ${String(type)} config needs machine.ca.key`);
  }
  return errors;
}

/** Kubernetes label syntax, which Talos checks before it registers the node. */
const LABEL_NAME = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

export function labelProblem(key: string, value: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return 'the key prefix must be a DNS subdomain';
  if (!LABEL_NAME.test(name)) return 'the key name must be 1-63 letters, digits, -, _ or ., starting and ending alphanumeric';
  if (value !== '' && !LABEL_NAME.test(value)) return 'the value must be empty or 1-63 letters, digits, -, _ or ., starting and ending alphanumeric';
  return undefined;
}

function isTrue(v: Plain): boolean {
  return v === true || (typeof v === 'string' && /^(?:y|yes|on)$/i.test(v));
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Label rules from types/network/hostname.go: first label ≤ 63, whole name ≤ 253. */
export function hostnameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.length > 253) return 'is longer than 253 characters';
  const first = name.split('.')[0] ?? '';
  if (first.length === 0 || first.length > 63) return 'must have a first label of 1 to 63 characters';
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/.test(name)) {
    return 'must be letters, digits and inner hyphens, in dot-separated labels';
  }
  return undefined;
}

function checkDocument(id: DocId, doc: Obj, legacy: Obj | undefined): string[] {
  const errors: string[] = [];
  switch (id.kind) {
    case 'HostnameConfig': {
      const hasAuto = present(doc['auto']);
      const hasName = present(doc['hostname']);
      if (hasAuto === hasName) errors.push('exactly one of auto and hostname must be set');
      if (hasAuto && !['stable', 'off'].includes(String(doc['auto']))) errors.push(`auto must be stable or off, not ${String(doc['auto'])}`);
      if (hasName) {
        const problem = typeof doc['hostname'] === 'object' ? 'must be a string' : hostnameProblem(String(doc['hostname']));
        if (problem !== undefined) errors.push(`hostname ${problem}`);
      }
      if (present(get(legacy, 'machine.network.hostname'))) {
        errors.push('conflicts with machine.network.hostname in the v1alpha1 document (set the hostname in one place)');
      }
      break;
    }
    case 'UnattendedInstallConfig': {
      const match = get(doc, 'provisioning.diskSelector.match');
      if (!present(match) || typeof match === 'object') errors.push('provisioning.diskSelector.match (a CEL expression) is required');
      break;
    }
    case 'EventSinkConfig':
      if (!present(doc['endpoint']) || typeof doc['endpoint'] === 'object') errors.push('endpoint (host:port) is required');
      break;
    case 'KmsgLogConfig':
      if (!present(doc['name'])) errors.push('name is required');
      if (!present(doc['url']) || !/^(tcp|udp):\/\/./.test(String(doc['url']))) errors.push('url must be tcp://host:port or udp://host:port');
      break;
  }
  return errors.map((e) => `${describeDoc(id)}: ${e}`);
}

/** [] when Talos would accept it; else one clear message per problem. */
export function validateTalosConfig(yamlText: string): string[] {
  const { docs, errors } = parseYamlDocuments(yamlText);
  return errors.length > 0 ? errors : validateDocuments(docs);
}

/** validateTalosConfig for documents already parsed with parseYamlDocuments. */
export function validateDocuments(docs: readonly Document[]): string[] {
  const seen: DocId[] = [];
  const plain: { id: DocId; value: Obj }[] = [];
  const problems: string[] = [];
  for (const [i, doc] of docs.entries()) {
    const id = documentId(doc);
    if (typeof id === 'string') {
      problems.push(`document ${i + 1}: ${id}`);
      continue;
    }
    if (seen.some((s) => sameDoc(s, id))) problems.push(`${describeDoc(id)} appears more than once`);
    seen.push(id);
    plain.push({ id, value: toPlain(doc.contents) as Obj });
  }
  const legacy = plain.find((d) => isLegacy(d.id))?.value;
  if (legacy === undefined) {
    problems.push('no v1alpha1 document (machine/cluster): Talos would stay in maintenance mode');
  } else {
    const unattended = plain.some((d) => d.id.kind === 'UnattendedInstallConfig');
    problems.push(...checkV1alpha1(legacy, unattended).map((e) => `v1alpha1: ${e}`));
  }
  for (const d of plain) if (!isLegacy(d.id)) problems.push(...checkDocument(d.id, d.value, legacy));
  return problems;
}
