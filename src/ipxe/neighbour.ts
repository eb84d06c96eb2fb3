import { readFileSync } from 'node:fs';

/**
 * The MAC the kernel's neighbour (ARP) table holds for an IPv4 address, or undefined when there is no complete
 * entry (a routed or relayed client, loopback). Lets heph check that a request claiming a MAC really comes from
 * the NIC with that MAC on the local segment.
 */
export function neighbourMac(ip: string, table = readArpTable()): string | undefined {
  // Only the lines of this address are split: a storm's table has a line per machine, read on every request.
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
