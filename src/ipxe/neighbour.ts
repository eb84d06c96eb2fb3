import { readFileSync } from 'node:fs';

/**
 * The MAC the kernel's neighbour (ARP) table holds for an IPv4 address, or undefined when there is no complete
 * entry (a routed or relayed client, loopback). Lets heph check that a request claiming a MAC really comes from
 * the NIC with that MAC on the local segment.
 */
export function neighbourMac(ip: string, table = readArpTable()): string | undefined {
  for (const line of table.split('\n').slice(1)) {
    const [addr, , flags, mac] = line.trim().split(/\s+/);
    // Flag 0x2 = ATF_COM: the entry is complete (resolved).
    if (addr === ip && flags !== undefined && (parseInt(flags, 16) & 0x2) !== 0 && mac) return mac.toLowerCase();
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
