import { execFileSync, type ChildProcess } from 'node:child_process';
import { tempDir } from './heph.ts';

/** True when this process may mount a tmpfs (root, with the capability), for the disk-full tests. */
export function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const d = tempDir();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d.path]);
    execFileSync('umount', [d.path]);
    return true;
  } catch {
    return false;
  } finally {
    d.remove();
  }
}

/** Resolves once a tshark process says it is capturing, so the packets that follow are not missed. */
export function tsharkStarted(p: ChildProcess, timeoutMs = 15_000): Promise<void> {
  let err = '';
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tshark did not start: ${err}`)), timeoutMs);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Capturing on')) (clearTimeout(t), resolve());
    });
  });
}
