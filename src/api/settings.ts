import { bool, int, ipv4, list, port, section } from '../schema.ts';

const HOSTNAME = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$/;

export const apiSettings = section('The admin surface (REST /api/v1, web page, admin gRPC), apart from the machine-facing server.', {
  enabled: bool('Serve the REST API and the web page.', true),
  listen: ipv4('Address of the admin listener. Loopback by default: reach it through an SSH tunnel or a TLS proxy, or set 0.0.0.0 and api.hosts on purpose.', '127.0.0.1'),
  port: port('TCP port of the admin listener.', 9080),
  hosts: list(
    'Host names (and addresses) the admin listener answers to, besides localhost, 127.0.0.1, [::1] and api.listen. A request naming any other Host gets 421 (defeats DNS rebinding).',
    [],
    { pattern: HOSTNAME, expects: 'host names such as heph.example.org' },
  ),
  sessionHours: int('How long a web-page login lasts.', 8, 1, 168),
  grpc: section('Admin gRPC service for automation, with mutual TLS (client certificates from heph\'s CA).', {
    enabled: bool('Serve the admin gRPC service.', true),
    listen: ipv4('Address to listen on.', '127.0.0.1'),
    port: port('TCP port.', 9443),
  }),
});
