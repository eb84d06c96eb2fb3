import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startDaemon, type Daemon } from '../../src/daemon.ts';
import { createLogger } from '../../src/log.ts';
import { validate } from '../../src/schema.ts';
import { settingsSchema, type Settings } from '../../src/settings.ts';
import type { Netns } from './netns.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** The installed entry point (`heph` in package.json bin), exactly what an operator runs. */
export const HEPH_BIN = join(REPO, 'bin/heph.js');

export function tempDir(prefix = 'heph-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/** Settings for a test: a fresh data dir, free ports, quiet logs, everything optional off unless asked for. */
export function testSettings(dataDir: string, over: DeepPartial<Settings> = {}): Settings {
  const base = { dataDir, log: { level: 'silent' }, http: { listen: '127.0.0.1', port: 0 }, grpc: { listen: '127.0.0.1', port: 0 }, kmsg: { listen: '127.0.0.1', port: 0 }, api: { port: 0, grpc: { enabled: false, port: 0 } } };
  return validate(settingsSchema, merge(base, over as Record<string, unknown>));
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev) ? merge(prev as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** A daemon in this process: fast, for HTTP-level tests on loopback. */
export async function inProcessHeph(over: DeepPartial<Settings> = {}): Promise<{ daemon: Daemon; url: string; dir: string; stop(): Promise<void> }> {
  const dir = tempDir();
  const settings = testSettings(dir.path, over);
  // Tests that expect startup to fail get no handle to remove the data dir with, so it goes here.
  const daemon = await startDaemon(settings, createLogger(settings)).catch((err: unknown) => {
    dir.remove();
    throw err;
  });
  const url = `http://127.0.0.1:${daemon.ctx.http.port}`;
  return {
    daemon,
    url,
    dir: dir.path,
    stop: async () => {
      await daemon.stop('test done');
      dir.remove();
    },
  };
}

export interface HephProcess {
  proc: ChildProcess;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  stderr(): string;
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

/**
 * `heph serve` as a child process (optionally inside a namespace) with the given settings file contents,
 * exactly as an operator would run it. Resolves once "heph is up" is logged.
 */
export async function spawnHeph(settings: Record<string, unknown>, opts: { netns?: Netns; env?: NodeJS.ProcessEnv; waitUp?: boolean; wrapper?: string[] } = {}): Promise<HephProcess> {
  const dir = tempDir();
  const file = join(dir.path, 'heph.yaml');
  // The admin listener on a free port and the admin gRPC service (which makes a CA on first start) off, unless the
  // test says otherwise: parallel tests must not fight over 9080, nor wait for RSA key generation they do not use.
  writeFileSync(file, stringify({ dataDir: join(dir.path, 'data'), api: { port: 0, grpc: { enabled: false, port: 0 } }, ...settings }));
  const args = [HEPH_BIN, 'serve', '--config', file];
  const env = { ...process.env, ...opts.env };
  // `wrapper`: a command heph runs under (e.g. setpriv, to take a capability away), its arguments first.
  const [cmd, ...argv] = [...(opts.wrapper ?? []), process.execPath, ...args] as [string, ...string[]];
  const proc = opts.netns ? opts.netns.spawn(cmd, argv, { env, cwd: REPO }) : spawn(cmd, argv, { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let err = '';
  let buf = '';
  const waiters = new Set<() => void>();
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
      for (const w of waiters) w();
    }
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => (dir.remove(), r(code))));
  const h: HephProcess = {
    proc,
    logs,
    stderr: () => err,
    waitForLog(pred, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const hit = logs.find(pred);
          if (hit) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(hit);
            return true;
          }
          return false;
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for a log line; stderr: ${err}; logs: ${JSON.stringify(logs.slice(-5))}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
        void exited.then(() => {
          if (waiters.has(check)) {
            waiters.delete(check);
            clearTimeout(t);
            reject(new Error(`heph exited before the expected log line; stderr: ${err}`));
          }
        });
      });
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
  if (opts.waitUp !== false) {
    try {
      await h.waitForLog((l) => l.msg === 'heph is up', 60_000);
    } catch (err) {
      // A daemon left running would keep the test file's event loop alive until the runner's timeout.
      proc.kill('SIGKILL');
      await exited;
      throw err;
    }
  }
  return h;
}
