import { int, ipv4, port, section } from '../schema.ts';

export const grpcSettings = section('gRPC listener for Talos machine events (talos.events.sink, EventSinkConfig).', {
  listen: ipv4('Address to listen on.', '0.0.0.0'),
  port: port('TCP port.', 4002),
  keepPerMachine: int('Talos events kept per machine (older ones are deleted). At least 1000: Talos replays up to 1000 buffered events on reconnect, and duplicates are recognised by the ids kept.', 5000, 1000, 1_000_000),
});

export const kmsgSettings = section('Receiver for Talos kernel logs as JSON lines (talos.logging.kernel, KmsgLogConfig), on TCP and UDP.', {
  listen: ipv4('Address to listen on (TCP and UDP).', '0.0.0.0'),
  port: port('TCP and UDP port (0: any free port, each protocol its own).', 4003),
  keepPerMachine: int('Kernel log lines kept per machine (older ones are deleted).', 5000, 100, 1_000_000),
});
