import { bool, int, IPV4, list, port, section } from '../schema.ts';

export const tftpSettings = section('Read-only TFTP for the iPXE binaries.', {
  enabled: bool('Serve TFTP (port 69 needs root or CAP_NET_BIND_SERVICE).', false),
  port: port('UDP port.', 69),
  addresses: list(
    'IPv4 addresses to listen on, one socket each; every transfer answers from the address its request arrived on, so multi-homed hosts reply from the address the machine used. Empty: the address of each network.interfaces entry, network.advertiseAddress and 127.0.0.1.',
    [],
    { pattern: IPV4, expects: 'IPv4 addresses such as 192.0.2.10' },
  ),
  maxBlksize: int('Largest blksize granted (RFC 2348); the default fits a 1500-byte MTU without IP fragments.', 1468, 8, 65464),
  maxWindowsize: int('Largest windowsize granted (RFC 7440): blocks sent per ACK.', 64, 1, 4096),
  maxTransfers: int('Concurrent transfers in total; further requests get ERROR 0 "server busy".', 128, 1, 10000),
  maxTransfersPerClient: int('Concurrent transfers per client IP address.', 8, 1, 10000),
  retries: int('Retransmissions of an unacknowledged window before the transfer is given up.', 5, 0, 20),
  busyPollMicros: int(
    'While a transfer waits for an ACK, poll its socket this long (yielding the CPU between polls) before sleeping: in lock-step every block is a round trip, and a sleeping thread adds the wake-up latency to each one. 0: always sleep.',
    50,
    0,
    1000,
  ),
  retryTimeoutMs: int('Wait for an ACK before retransmitting, unless the client asked for a timeout option.', 1000, 50, 255000),
});
