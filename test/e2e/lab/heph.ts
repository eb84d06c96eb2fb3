import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { REPO, spawnHeph, type HephProcess } from '../../helpers/heph.ts';
import { HEPH_IP, type Lab, type MachineIdentity } from './lab.ts';
import type { Payload } from './payload.ts';

/** The Talos "release" the payload is imported as: a version no real Talos has, so it is never mistaken for one. */
export const PAYLOAD_VERSION = 'v0.0.1-e2e.payload';
/** heph's ports in the lab; admin is its admin listener (REST API, web page) on the namespace's loopback. */
export const HEPH_PORTS = { http: 8080, grpc: 4002, kmsg: 4003, admin: 9080 } as const;

/** A fake but valid Talos worker config (passes heph's validation); each profile gets its own cluster name. */
export function baseConfig(clusterName: string): string {
  const pem = 'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJQekNCOHFBREFnRUNBaEVBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K';
  return `version: v1alpha1
debug: false
persist: true
machine:
  type: worker
  token: e2e0ab.0123456789abcdef
  ca:
    crt: ${pem}
    key: ""
  install:
    disk: /dev/vda
cluster:
  controlPlane:
    endpoint: https://${HEPH_IP}:6443
  clusterName: ${clusterName}
  network:
    dnsDomain: cluster.local
    podSubnets: [10.244.0.0/16]
    serviceSubnets: [10.96.0.0/12]
  token: abcdef.0123456789abcdef
  ca:
    crt: ${pem}
    key: ""
`;
}

export interface LabMachine {
  machine: MachineIdentity;
  profile: string;
}

/** One timeline entry as the REST API returns it. */
export interface TimelineEntry {
  at: string;
  kind: string;
  source: string;
  ip: string | null;
  message: string;
  data: Record<string, unknown>;
}

export interface LabHeph {
  heph: HephProcess;
  dataDir: string;
  settingsFile: string;
  url: string;
  /** GET on heph's REST API (admin listener, from inside its namespace) with a read-scope token; parsed JSON. */
  api<T>(path: string): T;
  /** heph's id of the machine with this MAC, if it has seen it. */
  machineId(mac: string): string | undefined;
  /** The machine's timeline, oldest first, from GET /api/v1/machines/{id}. */
  timeline(machineId: string): TimelineEntry[];
}

/**
 * heph from this checkout, as `heph serve` in the lab's heph namespace: proxy-DHCP and TFTP on its veth, HTTP,
 * the event sink and the kernel-log receiver; the payload imported as a Talos release; one profile per name in
 * `machines` (cluster name = profile name) and a selector per machine that picks its profile and accepts it.
 * The profiles name no event sink or kernel-log endpoint: heph adds those to every Talos boot itself.
 */
export async function startLabHeph(lab: Lab, payload: Payload, machines: LabMachine[]): Promise<LabHeph> {
  const dataDir = join(lab.dir, 'heph-data');
  const release = join(lab.dir, 'release');
  const profilesDir = join(lab.dir, 'profiles');
  mkdirSync(release, { recursive: true });
  mkdirSync(profilesDir, { recursive: true });

  // heph's asset import checks a sha512sum.txt, as it does for a real Talos release.
  copyFileSync(payload.kernel, join(release, 'vmlinuz-amd64'));
  copyFileSync(payload.initrd, join(release, 'initramfs-amd64.xz'));
  const sum = (f: string): string => createHash('sha512').update(readFileSync(join(release, f))).digest('hex');
  writeFileSync(join(release, 'sha512sum.txt'), ['vmlinuz-amd64', 'initramfs-amd64.xz'].map((f) => `${sum(f)}  ${f}\n`).join(''));
  const kernelArgs = [
    'talos.platform=metal',
    'slab_nomerge=',
    'pti=on',
    'console=ttyS0',
  ];
  const docs: unknown[] = [];
  for (const profile of [...new Set(machines.map((m) => m.profile))]) {
    docs.push({ kind: 'Profile', name: profile, talosVersion: PAYLOAD_VERSION, arch: 'amd64', kernelArgs, baseInline: baseConfig(profile), install: { disk: '/dev/vda' } });
  }
  for (const m of machines) {
    docs.push({ kind: 'Selector', name: `lab-machine-${m.machine.index}`, profile: m.profile, autoAccept: true, match: { mac: [m.machine.mac] } });
  }
  writeFileSync(join(profilesDir, 'lab.yaml'), docs.map((d) => stringify(d)).join('---\n'));

  const settings = {
    dataDir,
    log: { level: 'info' },
    network: { interfaces: ['heph0'] },
    http: { listen: '0.0.0.0', port: HEPH_PORTS.http },
    grpc: { listen: '0.0.0.0', port: HEPH_PORTS.grpc },
    kmsg: { listen: '0.0.0.0', port: HEPH_PORTS.kmsg },
    // The admin listener stays on the namespace's loopback; `heph lab` forwards a host port to it.
    api: { listen: '127.0.0.1', port: HEPH_PORTS.admin, grpc: { enabled: false } },
    dhcp: { enabled: true },
    tftp: { enabled: true },
    profiles: { dir: profilesDir },
  };
  const settingsFile = join(lab.dir, 'heph.yaml');
  writeFileSync(settingsFile, stringify(settings));
  // As an operator would: the release imported with the CLI, which checks it against its sha512sum.txt.
  hephCli(settingsFile, ['assets', 'import', release, '--version', PAYLOAD_VERSION, '--arch', 'amd64']);
  const heph = await spawnHeph(settings, { netns: lab.heph });
  lab.track(heph.proc, 'heph.log');
  const token = hephCli(settingsFile, ['tokens', 'create', '--name', 'e2e-reader', '--scope', 'read']).trim();
  const api = <T>(path: string): T =>
    // The token goes in on stdin (-H @-), never on a command line.
    JSON.parse(lab.heph.run('curl', ['-sSf', '--max-time', '10', '-H', '@-', `http://127.0.0.1:${HEPH_PORTS.admin}${path}`], { input: `authorization: Bearer ${token}\n` })) as T;
  return {
    heph,
    dataDir,
    settingsFile,
    url: `http://${HEPH_IP}:${HEPH_PORTS.http}`,
    api,
    machineId: (mac) => api<{ items: { id: string; macs: string[] }[] }>('/api/v1/machines?limit=200').items.find((m) => m.macs.includes(mac))?.id,
    timeline: (id) => api<{ timeline: TimelineEntry[] }>(`/api/v1/machines/${id}`).timeline,
  };
}

/** Runs a heph CLI command (bin/heph.js, as an operator would) against the lab heph's settings; returns stdout. */
export function hephCli(settingsFile: string, args: string[]): string {
  return execFileSync(process.execPath, [join(REPO, 'bin/heph.js'), ...args, '--config', settingsFile], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}
