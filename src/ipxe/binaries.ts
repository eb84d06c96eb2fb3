import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StartupError } from '../errors.ts';
import type { Settings } from '../settings.ts';

/** Firmware families heph hands an iPXE binary to. */
export type FirmwareArch = 'bios' | 'x86_64' | 'arm64';

export interface IpxeBinary {
  arch: FirmwareArch;
  /** The name machines ask for (TFTP file, HTTP path segment). */
  name: string;
  /** Resolved real path: links were followed once, at startup, by heph, never by a client's request. */
  path: string;
  size: number;
}

/**
 * The allowlist of iPXE binaries for the enabled architectures. A configured binary that is missing or unreadable
 * stops startup: finding out when the first machine of that kind boots is too late.
 */
export function ipxeBinaries(s: Pick<Settings, 'ipxe'>): IpxeBinary[] {
  const out: IpxeBinary[] = [];
  for (const arch of ['bios', 'x86_64', 'arm64'] as const) {
    const name = s.ipxe[arch];
    if (!name) continue;
    const file = join(s.ipxe.dir, name);
    try {
      const path = realpathSync(file);
      accessSync(path, constants.R_OK);
      const st = statSync(path);
      if (!st.isFile()) throw new Error('not a regular file');
      out.push({ arch, name, path, size: st.size });
    } catch (err) {
      throw new StartupError(
        `ipxe.${arch}: the iPXE binary ${file} cannot be served: ${(err as Error).message}.`,
        `Install Debian's iPXE binaries (apt-get install ipxe), point ipxe.dir at a directory that has ${name}, or set ipxe.${arch} to another file${arch === 'arm64' ? ' (or empty to not serve arm64)' : ''}.`,
        { cause: err },
      );
    }
  }
  return out;
}
