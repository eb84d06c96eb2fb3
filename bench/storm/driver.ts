// Starts the storm client inside the client namespace and reads its JSON lines.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { REPO } from '../../test/helpers/heph.ts';
import type { Netns } from '../../test/helpers/netns.ts';
import type { StormLine, StormRequest } from './client.ts';

const CLIENT = fileURLToPath(new URL('./client.ts', import.meta.url));

export interface StormClient {
  proc: ChildProcess;
  /** Resolves with every line once the client exits (rejects when it fails). */
  finished: Promise<StormLine[]>;
}

export function startStormClient(ns: Netns, req: StormRequest, onLine: (l: StormLine) => void = () => {}): StormClient {
  // V8 tiers code up after a budget of work; the client's own work per machine is small (DHCP, reading the helpers'
  // lines), and optimising it during the storm took CPU from heph: with a budget ~16× the default, the client used
  // 1.8–1.9 s of CPU in a storm of 1000 instead of 2.4–2.6 s, the storm's worst p99 no worse (2 storms each,
  // alternated). heph itself keeps the default: its main thread and event worker got slower by more than V8 saved.
  const proc = ns.spawn(process.execPath, ['--interrupt-budget=1048576', '--import', 'tsx', CLIENT, JSON.stringify(req)], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: StormLine[] = [];
  let buf = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = JSON.parse(buf.slice(0, i)) as StormLine;
      buf = buf.slice(i + 1);
      lines.push(l);
      onLine(l);
      // The client's next pass waits for this: onLine has read the counters around the pass.
      if (l.kind === 'pass') proc.stdin!.write('\n');
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const finished = new Promise<StormLine[]>((resolve, reject) =>
    proc.once('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(`storm client exited ${String(code)}: ${err.slice(-2000)}`)))),
  );
  return { proc, finished };
}
