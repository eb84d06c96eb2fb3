import { networkInterfaces } from 'node:os';
import { StartupError } from './errors.ts';
import type { Settings } from './settings.ts';

export interface ServedInterface {
  name: string;
  address: string;
  netmask: string;
}

/** The configured interfaces with their IPv4 addresses; a missing or address-less interface stops startup. */
export function servedInterfaces(s: Settings, ifaces = networkInterfaces()): ServedInterface[] {
  const out: ServedInterface[] = [];
  for (const name of s.network.interfaces) {
    const addrs = ifaces[name];
    if (!addrs) {
      throw new StartupError(
        `network.interfaces: there is no interface named ${name} on this machine (it has: ${Object.keys(ifaces).join(', ') || 'none'}).`,
        'Name the interface facing the machines to provision (see `ip -br link`).',
      );
    }
    const v4 = addrs.find((a) => a.family === 'IPv4');
    if (!v4) throw new StartupError(`network.interfaces: interface ${name} has no IPv4 address.`, `Give it one (\`ip addr add 192.0.2.10/24 dev ${name}\`) or name another interface.`);
    out.push({ name, address: v4.address, netmask: v4.netmask });
  }
  return out;
}

/**
 * The address machines are told to use: the configured one, else the first served interface's, else the first
 * non-loopback IPv4 address of this machine (a homelab box with one NIC), else loopback.
 */
export function advertiseAddress(s: Settings, served: ServedInterface[], ifaces = networkInterfaces()): string {
  if (s.network.advertiseAddress) return s.network.advertiseAddress;
  if (served[0]) return served[0].address;
  for (const addrs of Object.values(ifaces)) {
    const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  return '127.0.0.1';
}
