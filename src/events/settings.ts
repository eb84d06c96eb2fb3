import { ipv4, port, section } from '../schema.ts';

export const grpcSettings = section('gRPC listener for Talos machine events (talos.events.sink).', {
  listen: ipv4('Address to listen on.', '0.0.0.0'),
  port: port('TCP port.', 4002),
});
