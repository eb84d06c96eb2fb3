// bin/heph.js runs src/ as one esbuild bundle instead of through tsx (bin/bundle.js). These check what that must
// keep: each module's import.meta.url (migrations, protos, the UI and worker modules are found next to the source),
// packages resolved as Node resolves them although the bundle runs from a temporary directory, stack traces that name
// the TypeScript line when source maps are on, and no bundle left behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundle } from '../../bin/bundle.js';
import { spawnHeph, tempDir } from '../helpers/heph.ts';

const PROBE = fileURLToPath(new URL('../fixtures/bundle-probe/probe.ts', import.meta.url));
const HELPER = fileURLToPath(new URL('../fixtures/bundle-probe/helper.ts', import.meta.url));
const tmp = tempDir('heph-bundle-');
after(() => tmp.remove());

function runBundle(code: string, name: string, nodeArgs: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const file = join(tmp.path, name);
  writeFileSync(file, code);
  const r = spawnSync(process.execPath, [...nodeArgs, file], { cwd: tmp.path, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a bundle run from outside the repository keeps each module its own import.meta.url and finds its packages', async () => {
  const r = runBundle(await bundle(PROBE, { sourcemap: false }), 'plain.mjs');
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { probeUrl: pathToFileURL(PROBE).href, helperUrl: pathToFileURL(HELPER).href, yaml: 'a: 1\n' });
  assert.match(r.stderr, /probe failed on purpose/);
  // No map, so the trace names the bundle: the map is left out unless asked for, as it costs memory for good.
  assert.match(r.stderr, /plain\.mjs:\d+/);
  assert.doesNotMatch(r.stderr, /probe\.ts/);
});

test('with source maps on, a stack trace from the bundle names the TypeScript file and line', async () => {
  const code = await bundle(PROBE, { sourcemap: true });
  assert.match(code, /sourceMappingURL=data:application\/json/);
  const r = runBundle(code, 'mapped.mjs', ['--enable-source-maps']);
  assert.equal(r.status, 1, r.stderr);
  assert.ok(r.stderr.includes(`${pathToFileURL(PROBE).href}:6`) || r.stderr.includes(`${PROBE}:6`), r.stderr);
});

test('heph serve leaves no bundle behind in the temporary directory', async () => {
  const scratch = tempDir('heph-tmpdir-');
  try {
    const heph = await spawnHeph({ http: { listen: '127.0.0.1', port: 0 }, grpc: { listen: '127.0.0.1', port: 0 }, kmsg: { listen: '127.0.0.1', port: 0 } }, { env: { TMPDIR: scratch.path } });
    try {
      assert.deepEqual(readdirSync(scratch.path), []);
    } finally {
      assert.equal(await heph.stop(), 0);
    }
  } finally {
    scratch.remove();
  }
});

test('heph serve starts itself again in place with a small young generation and 2 malloc arenas: the same PID, the V8 flag on its command line, its log on the same stdout', async () => {
  const settings = { http: { listen: '127.0.0.1', port: 0 }, grpc: { listen: '127.0.0.1', port: 0 }, kmsg: { listen: '127.0.0.1', port: 0 } };
  const environ = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const heph = await spawnHeph(settings, { env: { MALLOC_ARENA_MAX: undefined } });
  try {
    // spawnHeph returned on heph's "listening" log line: stdout survived the exec.
    const argv = readFileSync(`/proc/${heph.proc.pid}/cmdline`, 'utf8').split('\0');
    assert.deepEqual(argv.slice(1, 4), ['--max-semi-space-size=4', fileURLToPath(new URL('../../bin/heph.js', import.meta.url)), 'serve']);
    // The environment the process image started with: glibc read it there.
    assert.ok(environ(heph.proc.pid!).includes('MALLOC_ARENA_MAX=2'));
  } finally {
    assert.equal(await heph.stop(), 0);
  }
  // An operator's own number stays.
  const own = await spawnHeph(settings, { env: { MALLOC_ARENA_MAX: '4' } });
  try {
    assert.ok(environ(own.proc.pid!).includes('MALLOC_ARENA_MAX=4'));
  } finally {
    assert.equal(await own.stop(), 0);
  }
});
