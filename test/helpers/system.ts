import { execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

/** The nice value of process `pid`'s thread named `name`, read from /proc as ps would; undefined when none has it. */
export function threadNice(pid: number | 'self', name: string): number | undefined {
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    if (readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim() !== name) continue;
    const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
    // The fields after the parenthesised name start at field 3; nice is field 19 (proc(5)).
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  }
  return undefined;
}
