import { bool, port, section } from '../schema.ts';

export const dhcpSettings = section('Proxy-DHCP: answers PXE and iPXE clients next to the site DHCP server; never hands out addresses.', {
  enabled: bool('Off by default: answering DHCP on a network is a decision to make on purpose. Needs network.interfaces.', false),
  port: port('UDP port for broadcast DISCOVER/REQUEST.', 67),
  proxyPort: port('UDP port for the PXE boot-server REQUEST.', 4011),
});
