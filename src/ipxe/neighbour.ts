import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { loadSys, SOCK_CLOEXEC, SOCK_NONBLOCK, type Sys } from '../net/syscalls.ts';

/**
 * The MAC the kernel's neighbour (ARP) table holds for an IPv4 address, or undefined when there is no complete
 * entry (a routed or relayed client, loopback). Lets heph check that a request claiming a MAC really comes from
 * the NIC with that MAC on the local segment.
 *
 * Asked of the kernel per interface over rtnetlink (RTM_GETNEIGH for one address): reading /proc/net/arp instead
 * made the kernel print, and heph search, a line per neighbour on every /ipxe and config request, so on a flat
 * network a storm cost grew with the square of its machines (4000 neighbours: see the test's figures). Where
 * netlink is refused, the table is read as before.
 */
export function neighbourMac(ip: string): string | undefined {
  const found = netlinkLookup().lookup(ip);
  return found === 'unavailable' ? arpTableMac(ip, readArpTable()) : found;
}

/** Where neighbourMac's answers come from: the kernel over rtnetlink, or /proc/net/arp where netlink is refused. */
export function neighbourSource(): 'netlink' | 'arp-table' {
  return netlinkLookup() instanceof NetlinkNeighbours ? 'netlink' : 'arp-table';
}

/** The complete entry for `ip` in /proc/net/arp's text, if any. */
export function arpTableMac(ip: string, table: string): string | undefined {
  // Only the lines of this address are split.
  const needle = `\n${ip} `;
  for (let at = table.indexOf(needle); at >= 0; at = table.indexOf(needle, at + 1)) {
    const end = table.indexOf('\n', at + 1);
    const [, , flags, mac] = table.slice(at + 1, end < 0 ? undefined : end).trim().split(/\s+/);
    // Flag 0x2 = ATF_COM: the entry is complete (resolved).
    if (flags !== undefined && (parseInt(flags, 16) & 0x2) !== 0 && mac) return mac.toLowerCase();
  }
  return undefined;
}

function readArpTable(): string {
  try {
    return readFileSync('/proc/net/arp', 'utf8');
  } catch {
    return '';
  }
}

const AF_INET = 2;
const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_ROUTE = 0;
const NLMSG_ERROR = 2;
const RTM_NEWNEIGH = 28;
const RTM_GETNEIGH = 30;
const NLM_F_REQUEST = 1;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const ENOENT = 2;
/** PERMANENT | NOARP | REACHABLE | PROBE | STALE | DELAY: the states /proc/net/arp marks complete (ATF_COM). */
const NUD_VALID = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08;
/** nlmsghdr (16) + ndmsg (12) + one rtattr holding an IPv4 address (8). */
const REQUEST_SIZE = 36;
/** How long the interface list is trusted before it is read again (interfaces come and go rarely). */
const INTERFACES_MS = 5000;

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

let netlink: NeighbourLookup | undefined;

interface NeighbourLookup {
  /** 'unavailable': netlink could not answer (refused socket, unexpected error); the caller reads the table. */
  lookup(ip: string): string | undefined | 'unavailable';
}

/** The process's netlink socket, opened at the first lookup. */
function netlinkLookup(): NeighbourLookup {
  return (netlink ??= openNetlink());
}

function openNetlink(): NeighbourLookup {
  let sys: Sys;
  let fd: number;
  try {
    sys = loadSys();
    fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  } catch {
    fd = -1;
  }
  if (fd < 0) return { lookup: () => 'unavailable' };
  return new NetlinkNeighbours(sys!, fd);
}

class NetlinkNeighbours implements NeighbourLookup {
  private readonly request = Buffer.alloc(REQUEST_SIZE);
  private readonly reply = Buffer.alloc(1024);
  /** sockaddr_nl of the kernel (port 0). */
  private readonly kernel = Buffer.alloc(12);
  private seq = 0;
  private indexes: number[] = [];
  private readAt = -Infinity;

  constructor(
    private readonly sys: Sys,
    private readonly fd: number,
  ) {
    this.kernel.writeUInt16LE(AF_NETLINK, 0);
    const r = this.request;
    r.writeUInt32LE(REQUEST_SIZE, 0);
    r.writeUInt16LE(RTM_GETNEIGH, 4);
    r.writeUInt16LE(NLM_F_REQUEST, 6);
    r[16] = AF_INET;
    r.writeUInt16LE(8, 28);
    r.writeUInt16LE(NDA_DST, 30);
  }

  lookup(ip: string): string | undefined | 'unavailable' {
    const octets = IPV4.exec(ip);
    if (!octets || octets.slice(1).some((o) => Number(o) > 255)) return undefined;
    for (let i = 0; i < 4; i++) this.request[32 + i] = Number(octets[i + 1]);
    // The kernel keeps a table per interface; /proc/net/arp shows them all, so every interface is asked.
    for (const index of this.interfaces()) {
      const found = this.ask(index);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** The indexes of the interfaces with an IPv4 address other than loopback (the only ones with ARP entries). */
  private interfaces(): number[] {
    const now = performance.now();
    if (now - this.readAt < INTERFACES_MS) return this.indexes;
    this.readAt = now;
    this.indexes = Object.entries(networkInterfaces())
      .filter(([, addrs]) => addrs?.some((a) => a.family === 'IPv4' && !a.internal))
      .map(([name]) => this.sys.if_nametoindex(name))
      .filter((index) => index > 0);
    return this.indexes;
  }

  /** The entry on one interface: its MAC, undefined (none, or not complete), or 'unavailable'. */
  private ask(index: number): string | undefined | 'unavailable' {
    const seq = (this.seq = (this.seq + 1) >>> 0);
    this.request.writeUInt32LE(seq, 8);
    this.request.writeInt32LE(index, 20);
    if (this.sys.sendto(this.fd, this.request, REQUEST_SIZE, 0, this.kernel, this.kernel.length) !== REQUEST_SIZE) return 'unavailable';
    // The kernel answers inside sendto: the reply is queued by now. Anything older (an answer to a request whose
    // read failed) is skipped by its sequence number.
    for (;;) {
      const n = this.sys.read(this.fd, this.reply, this.reply.length);
      if (n < 16) return 'unavailable';
      if (this.reply.readUInt32LE(8) !== seq) continue;
      const type = this.reply.readUInt16LE(4);
      if (type === NLMSG_ERROR) return n >= 20 && this.reply.readInt32LE(16) === -ENOENT ? undefined : 'unavailable';
      if (type !== RTM_NEWNEIGH || n < 28) return 'unavailable';
      return (this.reply.readUInt16LE(24) & NUD_VALID) !== 0 ? this.lladdr(Math.min(n, this.reply.readUInt32LE(0))) : undefined;
    }
  }

  /** NDA_LLADDR of the reply in hand, as aa:bb:cc:dd:ee:ff. */
  private lladdr(end: number): string | undefined {
    for (let at = 28; at + 4 <= end; ) {
      const len = this.reply.readUInt16LE(at);
      if (len < 4) return undefined;
      if (this.reply.readUInt16LE(at + 2) === NDA_LLADDR && len === 10) {
        return [...this.reply.subarray(at + 4, at + 10)].map((b) => b.toString(16).padStart(2, '0')).join(':');
      }
      at += (len + 3) & ~3;
    }
    return undefined;
  }
}
