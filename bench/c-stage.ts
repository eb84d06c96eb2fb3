// The bench's C helpers (tftp-client.c, http-client.c): compiled at start with the system C compiler, and, in
// their many-at-once modes, driven over a pipe: one request line in (`ID …`), one line out per request (`done ID …`
// or `failed ID reason`), a `cpu S` line at the end.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { join } from 'node:path';

/** Debian's package for each library a helper links, named when the build fails. */
const LIB_PACKAGES: Record<string, string> = { '-lnghttp2': 'libnghttp2-dev' };

/**
 * Compiles bench/<name>.c into `dir`, linked with `libs`; returns its path, or why it could not (no compiler, a
 * compile error, with the packages the libraries come from).
 */
export function buildC(dir: string, name: string, libs: readonly string[] = []): { path: string } | { missing: string } {
  const path = join(dir, name);
  const needs = libs.length ? ` (it needs ${libs.map((l) => LIB_PACKAGES[l] ?? l).join(', ')})` : '';
  for (const cc of ['cc', 'gcc']) {
    try {
      execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-o', path, join(import.meta.dirname, `${name}.c`), ...libs], { stdio: ['ignore', 'ignore', 'pipe'] });
      return { path };
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code !== 'ENOENT') return { missing: `${cc} failed${needs}: ${e.stderr?.toString().trim() ?? e.message}` };
    }
  }
  return { missing: 'no C compiler (cc or gcc) on this machine' };
}

const LINE = /^(?:done (\d+) (.*)|failed (-?\d+) (.*)|cpu ([0-9.]+))$/;

/** One helper process taking requests; `parse` reads what follows `done ID ` (undefined: not what it should be). */
export class CStage<R> {
  private readonly pending = new Map<number, { resolve: (r: R) => void; reject: (e: Error) => void }>();
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;
  private nextId = 0;
  private buf = '';
  private cpu = NaN;

  constructor(
    path: string,
    args: string[],
    private readonly parse: (rest: string) => R | undefined,
  ) {
    this.proc = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    this.proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    this.proc.stdout!.on('data', (d: Buffer) => this.read(d.toString()));
    this.exited = new Promise((resolve) =>
      // 'close', not 'exit': the last lines (the cpu line) may still be in the pipe when the process has exited.
      this.proc.once('close', (code) => {
        for (const p of this.pending.values()) p.reject(new Error(`${path} exited ${String(code)}: ${err.trim()}`));
        this.pending.clear();
        resolve();
      }),
    );
  }

  /** Sets the helper's nice value (lower runs first; below 0 needs root or CAP_SYS_NICE). */
  renice(nice: number): void {
    setPriority(this.proc.pid!, nice);
  }

  /** Sends `ID <line>`; settles with the helper's answer to it. */
  request(line: string): Promise<R> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.proc.stdin!.write(`${id} ${line}\n`);
    });
  }

  /** Lets the requests in flight finish; resolves with the helper's CPU seconds. */
  async end(): Promise<number> {
    this.proc.stdin!.end();
    await this.exited;
    return this.cpu;
  }

  private read(chunk: string): void {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const l = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      const m = LINE.exec(l);
      if (m?.[5] !== undefined) {
        this.cpu = Number(m[5]);
        continue;
      }
      const id = Number(m?.[1] ?? m?.[3]);
      const p = this.pending.get(id);
      if (!m || !p) throw new Error(`unexpected line from a bench helper: ${l}`);
      this.pending.delete(id);
      const r = m[1] === undefined ? undefined : this.parse(m[2]!);
      if (r !== undefined) p.resolve(r);
      else p.reject(new Error(m[4] ?? `unexpected line: ${l}`));
    }
  }
}
