import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, vethPair } from '../../helpers/netns.ts';

/**
 * The netboot lab of netboot-lab.md: three namespaces joined on one bridge, with no routes out and no forwarding.
 *   site  the site's ordinary DHCP server (dnsmasq: addresses only, no boot options, no router, no DNS)
 *   heph  the server under test, at HEPH_IP
 *   lan   the bridge and the VMs' tap devices (QEMU runs here)
 * Probes are extra namespaces on the bridge with a chosen address, for requests "from" a machine's IP.
 * Everything made here is removed by destroy(), and by netns.ts's exit hook if the process dies first.
 */
export const SUBNET = '192.0.2';
export const HEPH_IP = `${SUBNET}.10`;
const SITE_IP = `${SUBNET}.2`;
const BRIDGE = 'br0';
/** Ports of lab/peer.ts, the stand-in server of the payload test. */
export const PEER_PORTS = { http: 8080, grpc: 4002, kernelLog: 4001 } as const;

/** A VM's identity in the lab, all derived from its index so tests can predict MAC, IP and SMBIOS uuid. */
export interface MachineIdentity {
  index: number;
  mac: string;
  ip: string;
  uuid: string;
  tap: string;
}

export function identity(index: number): MachineIdentity {
  if (!Number.isInteger(index) || index < 1 || index > 99) throw new Error(`machine index ${index} out of 1..99`);
  const hex = index.toString(16).padStart(2, '0');
  return {
    index,
    mac: `52:54:00:e2:e0:${hex}`,
    ip: `${SUBNET}.${100 + index}`,
    uuid: `7e57b001-0000-4000-8000-0000000000${hex}`,
    tap: `tap${index}`,
  };
}

// Every process any lab started and that is still running. If the test process exits without destroy() (a
// timeout, an uncaught error), they are killed here; netns.ts's own exit hook then removes the namespaces.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export class Lab {
  readonly dir: string;
  private readonly children = new Set<ChildProcess>();
  private readonly probes: Netns[] = [];
  private dnsmasq: ChildProcess | undefined;
  private destroyed = false;

  private constructor(
    readonly site: Netns,
    readonly heph: Netns,
    readonly lan: Netns,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'heph-lab-'));
  }

  /** Builds the topology and starts the site DHCP server. Any failure removes what was made. */
  static async create(): Promise<Lab> {
    const made: Netns[] = [];
    let lab: Lab | undefined;
    try {
      for (const tag of ['lan', 'site', 'heph']) made.push(Netns.create(tag));
      const [lan, site, heph] = made as [Netns, Netns, Netns];
      lab = new Lab(site, heph, lan);
      lan.run('ip', ['link', 'add', BRIDGE, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
      lan.run('ip', ['link', 'set', BRIDGE, 'up']);
      lab.plug(site, 'site0', 'p-site', `${SITE_IP}/24`);
      lab.plug(heph, 'heph0', 'p-heph', `${HEPH_IP}/24`);
      await lab.startDhcp();
      return lab;
    } catch (err) {
      if (lab) await lab.destroy();
      else for (const ns of made) ns.destroy();
      throw err;
    }
  }

  /** Joins a namespace to the bridge through a veth, with an address on its end. */
  private plug(ns: Netns, inside: string, port: string, cidr: string): void {
    vethPair(ns, inside, this.lan, port);
    this.lan.run('ip', ['link', 'set', port, 'master', BRIDGE]);
    ns.addr(inside, cidr);
  }

  private async startDhcp(): Promise<void> {
    // Fixed leases per lab MAC, so a VM's IP is known before it boots.
    const hosts = join(this.dir, 'dhcp-hosts');
    writeFileSync(hosts, Array.from({ length: 32 }, (_, i) => identity(i + 1)).map((m) => `${m.mac},${m.ip}\n`).join(''));
    const args = [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--port=0',
      '--interface=site0',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--pid-file=',
      // It reads the hosts file after dropping privileges, and the lab directory is private.
      '--user=root',
      `--dhcp-leasefile=${join(this.dir, 'leases')}`,
      `--dhcp-range=${SUBNET}.100,${SUBNET}.199,255.255.255.0,10m`,
      `--dhcp-hostsfile=${hosts}`,
      '--dhcp-authoritative',
      // No router and no DNS server: nothing in the lab may try to leave it.
      '--dhcp-option=3',
      '--dhcp-option=6',
      '--log-dhcp',
      '--log-facility=-',
    ];
    this.dnsmasq = this.spawnIn(this.site, 'dnsmasq', args, 'dnsmasq.log');
    await new Promise((r) => setTimeout(r, 300));
    if (this.dnsmasq.exitCode !== null) throw new Error(`dnsmasq exited (${this.dnsmasq.exitCode}); see ${join(this.dir, 'dnsmasq.log')}`);
  }

  /** A tap device on the bridge for one VM (QEMU opens it by name; it must run in the lan namespace). */
  addTap(name: string): void {
    this.lan.run('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap']);
    this.lan.run('ip', ['link', 'set', name, 'master', BRIDGE]);
    this.lan.run('ip', ['link', 'set', name, 'up']);
  }

  removeTap(name: string): void {
    try {
      this.lan.run('ip', ['link', 'del', name]);
    } catch {
      // Already gone with its namespace.
    }
  }

  /** A namespace on the bridge holding `ip`, e.g. a machine's address once that machine is off. */
  addProbe(tag: string, ip: string): Netns {
    const ns = Netns.create(`pr-${tag}`);
    this.probes.push(ns);
    this.plug(ns, 'eth0', `p-${tag}`.slice(0, 15), `${ip}/24`);
    return ns;
  }

  /** Spawns a process inside a namespace, its output appended to a file in the lab directory; destroy() kills it. */
  spawnIn(ns: Netns, cmd: string, args: string[], logName: string): ChildProcess {
    const child = ns.spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.track(child, logName);
    return child;
  }

  /** Remembers a child so destroy() kills it, and copies its output to a log file in the lab directory. */
  track(child: ChildProcess, logName: string): void {
    this.children.add(child);
    live.add(child);
    const file = join(this.dir, logName);
    const append = (d: Buffer): void => {
      try {
        writeFileSync(file, d, { flag: 'a' });
      } catch {
        // The lab directory is gone: the lab is being torn down.
      }
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    child.on('exit', () => {
      this.children.delete(child);
      live.delete(child);
    });
  }

  /** Kills every process started here (by PID), removes taps, probes and namespaces, and the lab directory. */
  async destroy(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.children].map((c) => stopChild(c)));
    for (const ns of [...this.probes, this.site, this.heph, this.lan]) ns.destroy();
    if (!opts.keepDir && existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Why the lab cannot run here, or undefined when it can: root, iproute2, dnsmasq, QEMU and the firmware files. */
export function labUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, taps)';
  for (const [cmd, pkg] of [
    ['ip', 'iproute2'],
    ['dnsmasq', 'dnsmasq-base'],
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['busybox', 'busybox-static'],
    ['cpio', 'cpio'],
    ['protoc', 'protobuf-compiler'],
    ['curl', 'curl'],
    ['apt-get', 'apt'],
    ['flock', 'util-linux'],
  ] as const) {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    } catch {
      return `${cmd} is missing (Debian package ${pkg})`;
    }
  }
  for (const [file, pkg] of [
    ['/usr/share/OVMF/OVMF_CODE_4M.fd', 'ovmf'],
    ['/usr/share/OVMF/OVMF_VARS_4M.fd', 'ovmf'],
    ['/usr/lib/ipxe/qemu/pxe-virtio.rom', 'ipxe-qemu'],
    ['/usr/lib/ipxe/ipxe.efi', 'ipxe'],
    ['/dev/net/tun', 'the tun kernel module'],
  ] as const) {
    if (!existsSync(file)) return `${file} is missing (Debian package ${pkg})`;
  }
  return undefined;
}
