import { bool, list, map, port, section } from '../schema.ts';

const FAMILIES = ['bios', 'x86_64', 'arm64'] as const;
const HEXBYTES = /^([0-9a-fA-F]{2})*$/;
const CIDR = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(\/([0-9]|[12]\d|3[0-2]))?$/;

/** Sub-option code → value as hex bytes (colons allowed), per firmware family. */
export type Option43Settings = Record<string, Record<string, string>>;

function checkOption43(family: string, value: unknown): string | undefined {
  if (!(FAMILIES as readonly string[]).includes(family)) return `expected one of ${FAMILIES.join(', ')}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a mapping of sub-option code to hex bytes, e.g. { 6: "08" }';
  let total = 1;
  for (const [code, hex] of Object.entries(value)) {
    const n = Number(code);
    if (!Number.isInteger(n) || n < 1 || n > 254) return `sub-option ${code}: the code must be 1..254`;
    if (typeof hex !== 'string' || !HEXBYTES.test(hex.replaceAll(':', ''))) return `sub-option ${code}: expected hex bytes such as "00:50:58:45"`;
    total += 2 + hex.replaceAll(':', '').length / 2;
  }
  return total > 255 ? 'the encoded option 43 would exceed 255 bytes' : undefined;
}

export const dhcpSettings = section('Proxy-DHCP: answers PXE and iPXE clients next to the site DHCP server; never hands out addresses.', {
  enabled: bool('Off by default: answering DHCP on a network is a decision to make on purpose. Needs network.interfaces.', false),
  port: port('UDP port for broadcast DISCOVER/REQUEST.', 67),
  proxyPort: port('UDP port for the PXE boot-server REQUEST.', 4011),
  watchForeign: bool(
    'Listen on UDP 68 of each served interface for PXE offers from other servers (a second proxy-DHCP, or a DHCP server handing out boot files) and report them: an ALERT log line, an alert.dhcp-foreign timeline event and heph_dhcp_foreign_pxe_offers_total. Only broadcast offers are visible; a host DHCP client bound to its own address keeps its unicast replies.',
    true,
  ),
  relays: list(
    'DHCP relay agents (giaddr) whose forwarded requests are answered, as IPv4 addresses or CIDR ranges. A relayed request from any other giaddr gets no answer, so a spoofed giaddr cannot aim replies at a victim.',
    [],
    { pattern: CIDR, expects: 'IPv4 addresses or CIDR ranges such as 10.1.0.0/16' },
  ),
  option43: {
    // The example file puts each value on its key's line, so nested defaults are written in flow style.
    exampleValue: '{ bios: { "6": "08", "10": "00:50:58:45" }, x86_64: {}, arm64: {} }',
    ...map<Record<string, string>>(
    'PXE vendor sub-options (option 43) sent to PXE ROMs per firmware family (bios, x86_64, arm64); never sent to iPXE. Default BIOS: 6 = 08 (use this offer\'s boot file, no discovery) and 10 = 00 "PXE" (no menu prompt). Some UEFI firmware ignores offers carrying 43.6, others need it (EDK2 #8149): set x86_64 to the BIOS values if yours needs it.',
    { bios: { '6': '08', '10': '00:50:58:45' }, x86_64: {}, arm64: {} },
    checkOption43,
    'a mapping of bios/x86_64/arm64 to { sub-option code: hex bytes }',
    ),
  },
});
