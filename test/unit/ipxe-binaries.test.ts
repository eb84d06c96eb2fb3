import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StartupError } from '../../src/errors.ts';
import { ipxeBinaries } from '../../src/ipxe/binaries.ts';
import { tempDir } from '../helpers/heph.ts';

const dir = tempDir();
after(() => dir.remove());

describe('iPXE binaries allowlist', () => {
  it('lists the configured binaries per firmware with their real paths and sizes', () => {
    writeFileSync(join(dir.path, 'undionly.kpxe'), Buffer.alloc(100));
    writeFileSync(join(dir.path, 'real-ipxe.efi'), Buffer.alloc(300));
    symlinkSync(join(dir.path, 'real-ipxe.efi'), join(dir.path, 'ipxe.efi'));
    const bins = ipxeBinaries({ ipxe: { dir: dir.path, bios: 'undionly.kpxe', x86_64: 'ipxe.efi', arm64: '' } });
    assert.deepEqual(
      bins.map((b) => [b.arch, b.name, b.path, b.size]),
      [
        ['bios', 'undionly.kpxe', join(dir.path, 'undionly.kpxe'), 100],
        ['x86_64', 'ipxe.efi', join(dir.path, 'real-ipxe.efi'), 300],
      ],
    );
  });

  it('stops startup when an enabled binary is missing, saying how to fix it', () => {
    assert.throws(
      () => ipxeBinaries({ ipxe: { dir: dir.path, bios: 'undionly.kpxe', x86_64: 'ipxe.efi', arm64: 'snp-arm64.efi' } }),
      (err: unknown) =>
        err instanceof StartupError &&
        err.message.startsWith(`ipxe.arm64: the iPXE binary ${join(dir.path, 'snp-arm64.efi')} cannot be served: ENOENT`) &&
        /apt-get install ipxe/.test(err.hint ?? '') &&
        /or empty to not serve arm64/.test(err.hint ?? ''),
    );
  });
});
