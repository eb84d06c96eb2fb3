import { bool, port, section } from '../schema.ts';

export const tftpSettings = section('Read-only TFTP for the iPXE binaries.', {
  enabled: bool('Serve TFTP (port 69 needs root or CAP_NET_BIND_SERVICE).', false),
  port: port('UDP port.', 69),
});
