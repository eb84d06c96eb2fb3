#!/usr/bin/env node
// The daemon ships as TypeScript with no build step between a checkout and a running heph: this entry point bundles
// src/ (bin/bundle.js, ~0.2 s) and runs the bundle. Why not tsx, as before: its loader hooks run on a thread of their
// own, with a V8 heap of their own, for the life of the process. Measured in the boot storm (1000 machines; 5 runs
// bundled, 2 with tsx, in the same hour): peak RSS 254–262 MiB bundled, 303–305 MiB with tsx; idle 125–131 MiB
// against 174–181 MiB; and heph's CPU 5.2–5.7 s against 6.2–6.9 s, as tsx also turns on source maps, which every
// stack trace captured then pays for.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundle } from './bundle.js';

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
