// The storm's lab: two namespaces joined by a veth, heph's data dir prepared ahead (assets imported, profiles
// written), and one source address per simulated machine on the client side.
//   srv eth0 10.90.0.1/24 (heph)  ──  cli eth0 10.90.0.2/24 (the site router and DHCP relay agent)
//   machines: 10.91.0.1 … one /32 per machine on cli's eth0, routed by srv via 10.90.0.2
// Routed, as a large site is: heph's neighbour table holds one entry (the router), not one per machine (the
// kernel's table is global and capped by gc_thresh3 = 1024 by default), and the MAC check on /ipxe sees no entry.
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importRelease } from '../../src/assets/import.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { REPO } from '../../test/helpers/heph.ts';
import { Netns, vethPair } from '../../test/helpers/netns.ts';

export const SERVER_IP = '10.90.0.1';
export const RELAY_IP = '10.90.0.2';
export const HTTP_PORT = 8080;
export const GRPC_PORT = 4002;
export const NGINX_PORT = 8081;
/** dnsmasq's TFTP, the reference for the TFTP step alone, on a second address of the server side. */
export const DNSMASQ_IP = '10.90.0.3';
export const TALOS_VERSION = 'v1.13.9';

/** Source addresses the lab can give machines: 10.91.0.0/20 without its network and broadcast addresses. */
export const LAB_ADDRESSES = 4094;

/** Machine i's source address: 10.91.0.1 upwards, inside 10.91.0.0/20. */
export function machineIp(i: number): string {
  const n = 1 + i;
  return `10.91.${n >> 8}.${n & 255}`;
}

export interface Lab {
  srv: Netns;
  cli: Netns;
  destroy(): void;
}

export function createLab(n: number, tag = 'st'): Lab {
  if (n > LAB_ADDRESSES) throw new RangeError(`at most ${LAB_ADDRESSES} machines fit the /20`);
  const srv = Netns.create(`${tag}s`);
  const cli = Netns.create(`${tag}c`);
  vethPair(srv, 'eth0', cli, 'eth0');
  srv.addr('eth0', `${SERVER_IP}/24`);
  cli.addr('eth0', `${RELAY_IP}/24`);
  srv.run('ip', ['route', 'add', '10.91.0.0/20', 'via', RELAY_IP]);
  const lines = Array.from({ length: n }, (_, i) => `addr add ${machineIp(i)}/32 dev eth0`);
  cli.run('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n`, timeout: 120_000 });
  return {
    srv,
    cli,
    destroy() {
      srv.destroy();
      cli.destroy();
    },
  };
}

export interface Release {
  dir: string;
  kernel: { name: string; size: number };
  initrd: { name: string; size: number };
}

/** A fake Talos release of the given sizes (random bytes, real sha512sum.txt) in `dir`. */
export function writeRelease(dir: string, kernelBytes: number, initrdBytes: number): Release {
  const rel = join(dir, TALOS_VERSION);
  mkdirSync(rel, { recursive: true });
  const sums: string[] = [];
  for (const [name, size] of [['vmlinuz-amd64', kernelBytes], ['initramfs-amd64.xz', initrdBytes]] as const) {
    const bytes = randomBytes(size);
    writeFileSync(join(rel, name), bytes);
    sums.push(`${createHash('sha512').update(bytes).digest('hex')}  ${name}`);
  }
  writeFileSync(join(rel, 'sha512sum.txt'), `${sums.join('\n')}\n`);
  return { dir: rel, kernel: { name: 'vmlinuz-amd64', size: kernelBytes }, initrd: { name: 'initramfs-amd64.xz', size: initrdBytes } };
}

/**
 * heph's data dir with the release imported and a profiles dir whose one selector auto-accepts every x86-64
 * machine, so the storm needs no operator.
 */
export async function prepareDataDir(dataDir: string, profilesDir: string, release: Release): Promise<void> {
  const { db } = openInventory(dataDir);
  try {
    await importRelease({ db, dataDir, source: release.dir, version: TALOS_VERSION });
  } finally {
    db.close();
  }
  mkdirSync(profilesDir, { recursive: true });
  cpSync(join(REPO, 'test/fixtures/profiles/configs'), join(profilesDir, 'configs'), { recursive: true });
  writeFileSync(
    join(profilesDir, 'storm.yaml'),
    [
      'kind: Profile',
      'name: worker',
      `talosVersion: ${TALOS_VERSION}`,
      'base: configs/worker.yaml',
      'patches:',
      '  - configs/ntp.yaml',
      'install:',
      '  disk: /dev/vda',
      '---',
      'kind: Selector',
      'name: storm',
      'profile: worker',
      'autoAccept: true',
      'match:',
      '  arch: [x86_64]',
      '',
    ].join('\n'),
  );
}

/**
 * heph settings for the storm: every service on the lab's server side, limits sized for N machines; `efi` is the
 * binary x86-64 UEFI PXE ROMs are offered (ipxe.efi 850 KiB, or snponly.efi 170 KiB).
 */
export function stormSettings(dataDir: string, profilesDir: string, n: number, efi = 'ipxe.efi'): Record<string, unknown> {
  return {
    dataDir,
    log: { level: 'info' },
    network: { interfaces: ['eth0'] },
    http: { listen: '0.0.0.0', port: HTTP_PORT },
    grpc: { listen: '0.0.0.0', port: GRPC_PORT },
    dhcp: { enabled: true, relays: [`${RELAY_IP}/32`] },
    tftp: { enabled: true, addresses: [SERVER_IP], maxTransfers: Math.max(128, n), maxTransfersPerClient: 2 },
    profiles: { dir: profilesDir },
    ipxe: { x86_64: efi },
  };
}
