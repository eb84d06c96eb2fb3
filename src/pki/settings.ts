import { bool, IPV4, list, port, section } from '../schema.ts';

export const tlsSettings = section("HTTPS for the machine-facing endpoints (iPXE scripts, assets, configs) on a second port, with a certificate from heph's CA (<dataDir>/pki/ca.crt). HTTP stays on: PXE ROMs and most iPXE builds cannot do HTTPS with a private CA.", {
  enabled: bool('Listen for HTTPS as well (on http.listen).', false),
  port: port('TCP port for HTTPS.', 8443),
  dnsNames: list('DNS names to put in the server certificate (the advertise address is always in it).', [], {
    pattern: /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    expects: 'DNS names such as heph.example.net',
  }),
  ipAddresses: list('Further IPv4 addresses to put in the server certificate.', [], { pattern: IPV4, expects: 'IPv4 addresses such as 192.0.2.10' }),
});

export const signingSettings = section('Signatures of boot artefacts for iPXE `imgverify` (detached CMS, served at <url>.sig), made with a code-signing certificate from heph\'s CA. Needs an iPXE built with IMAGE_TRUST_CMD and TRUST=<dataDir>/pki/ca.crt (docs/ipxe-trust.md).', {
  enabled: bool('Sign every iPXE script and asset, and make scripts imgverify what they load.', false),
});
