#!/usr/bin/env node
// The daemon ships as TypeScript with no build step between a checkout and a running heph: this entry point bundles
// src/ (bin/bundle.js, ~0.2 s) and runs the bundle. Why not tsx, as before: its loader hooks run on a thread of their
// own, with a V8 heap of their own, for the life of the process. Measured in the boot storm (1000 machines; 5 runs
// bundled, 2 with tsx, in the same hour): peak RSS 254–262 MiB bundled, 303–305 MiB with tsx; idle 125–131 MiB
// against 174–181 MiB; and heph's CPU 5.2–5.7 s against 6.2–6.9 s, as tsx also turns on source maps, which every
// stack trace captured then pays for.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundle } from './bundle.js';

// V8 grows a heap's limit up to 4× its size after each full collection when the program allocates fast, as a boot
// storm does: the main heap went 31 → 105 MiB used (138 MiB held) before its next full collection, and heph's peak
// RSS over a warm-up of 1000 machines and a storm of 1000 was 296–326 MiB (5 storms). Growing by half at most (for
// this thread and every worker, which share V8's flags): 261–283 MiB (4), worst p99 no worse, heph's CPU +0.3–0.6 s.
setFlagsFromString('--heap-growing-percent=50');

// V8 sizes the main thread's young generation when the process starts (up to two semi-spaces of 16 MiB each), and a
// flag set from here reaches only the workers, so the daemon starts itself again, in place (execv: same PID, same
// descriptors), with semi-spaces of 4 MiB. The main thread's young generation is its HTTP and SQLite garbage, which
// dies young either way. Storms of 1000, alternated: peak RSS 222 and 234 MiB against 262 and 266 just started, 252
// and 263 against 282 and 287 over a warm-up and a storm, CPU and p99 no worse; the same flag on the workers alone
// changed nothing (253–320 MiB).
const YOUNG = '--max-semi-space-size=4';
// The same second start also caps glibc's malloc arenas at 2 (its default allows 8 per CPU), unless the operator chose
// a number: MALLOC_ARENA_MAX is read when the process image starts. Warm storms (a warm-up of 1000, then 1000),
// alternated, 8 each: with the default 2 peaked at 352 and 361 MiB, glibc's main heap alone at 137 MiB, the other 6
// at 261–289 MiB; with 2 arenas, 244–264 MiB, heph's CPU and the worst p99 the same.
const ARENAS = '2';
// Not when a size was chosen already (on the command line or in NODE_OPTIONS, which includes this second start), nor
// under a parent's IPC channel (NODE_CHANNEL_FD), which a new image would not know how to reopen.
const sized = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('--max-semi-space-size'));
if (process.argv[2] === 'serve' && !sized && process.env.NODE_CHANNEL_FD === undefined) {
  try {
    const { default: koffi } = await import('koffi');
    const libc = koffi.load('libc.so.6');
    const fcntl = libc.func('int fcntl(int fd, int cmd, int arg)');
    const execv = libc.func('int execv(const char *path, const char **argv)');
    // Node marks stdin, stdout and stderr close-on-exec; the new image must keep them.
    const F_SETFD = 2;
    for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 0);
    // Node sets the C environment that execv passes on.
    process.env.MALLOC_ARENA_MAX ??= ARENAS;
    execv(process.execPath, [process.execPath, YOUNG, ...process.execArgv, ...process.argv.slice(1), null]);
  } catch {
    // No FFI here: run on with V8's default sizes.
  }
  // execv returned: it failed, and heph runs on with V8's default sizes.
}

const code = await bundle(fileURLToPath(new URL('../src/cli.ts', import.meta.url)));
// A private directory, removed as soon as the bundle is loaded: nothing of it outlives startup or is readable by
// others.
const dir = mkdtempSync(join(tmpdir(), 'heph-'));
let cli;
try {
  const file = join(dir, 'heph.mjs');
  writeFileSync(file, code, { mode: 0o600 });
  cli = await import(pathToFileURL(file).href);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = await cli.main(process.argv.slice(2));
