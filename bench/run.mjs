// Runs one benchmark by name, or lists them: `npm run bench -- <name> [args]`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const benches = readdirSync(dir)
  .filter((f) => /\.bench\.(ts|mjs)$/.test(f))
  .map((f) => ({ name: f.replace(/\.bench\.(ts|mjs)$/, ''), file: f }));
const [name, ...args] = process.argv.slice(2);
const bench = benches.find((b) => b.name === name);
if (!bench) {
  console.error(`usage: npm run bench -- <name> [options]\n\nbenchmarks: ${benches.map((b) => b.name).join(', ') || '(none yet)'}`);
  process.exit(name ? 2 : 0);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${bench.file}`, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
