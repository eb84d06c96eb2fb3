import { section, str } from '../schema.ts';

const FILE = /^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const expects = 'a file name inside ipxe.dir such as ipxe.efi';

export const ipxeSettings = section('The iPXE binaries handed to PXE ROMs (TFTP) and UEFI HTTP Boot (HTTP).', {
  dir: str('Directory holding the iPXE binaries (Debian package ipxe).', '/usr/lib/ipxe'),
  bios: str('Binary for BIOS PXE ROMs.', 'undionly.kpxe', { pattern: FILE, expects }),
  x86_64: str('Binary for x86-64 UEFI (ipxe.efi carries its own NIC drivers; snponly.efi uses the firmware\'s).', 'ipxe.efi', { pattern: FILE, expects }),
  arm64: str('Binary for arm64 UEFI; empty: arm64 machines are not offered iPXE.', '', { pattern: FILE, expects }),
});
