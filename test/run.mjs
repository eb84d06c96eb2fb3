// Runs the test suites with node:test through tsx on an explicit file list (Node 20 expands no globs).
// usage: node test/run.mjs [unit] [integration] [e2e]   (default: all three)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];
const files = [];
for (const suite of suites) {
  const dir = join(root, suite);
  if (!existsSync(dir)) {
    if (process.argv.slice(2).includes(suite)) {
      console.error(`test/run.mjs: no suite named ${suite}`);
      process.exit(2);
    }
    continue;
  }
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.test.ts')) files.push(join(dir, f));
}
if (files.length === 0) {
  console.error('test/run.mjs: no test files found');
  process.exit(1);
}
// Integration and e2e files build namespaces and start daemons; on two cores, two files at a time is the sweet spot.
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
