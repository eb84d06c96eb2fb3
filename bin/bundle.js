// src/ as one ES module that runs from anywhere, built by esbuild: what bin/heph.js runs instead of loading the
// TypeScript through tsx.
import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Worker modules are bundled with esbuild's buildSync (src/threads.ts), which otherwise keeps a worker thread (another
// V8 heap, ~10 MiB) alive for the life of the process to serve a handful of calls at startup.
process.env.ESBUILD_WORKER_THREADS = '0';
const { build, stop } = await import('esbuild');

/**
 * Makes the bundle runnable from anywhere: each module's import.meta.url becomes its own file's URL (they locate
 * migrations, protos, the UI and worker modules next to the source), and each package import becomes the file Node
 * itself resolves it to from this directory, as the bundle does not sit next to node_modules.
 */
const inPlace = {
  name: 'in-place',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (isBuiltin(args.path) ? undefined : { path: import.meta.resolve(args.path), external: true }));
    b.onLoad({ filter: /\.ts$/ }, async (args) => ({
      contents: (await readFile(args.path, 'utf8')).replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
      loader: 'ts',
    }));
  },
};

/**
 * The module at `entry` (a path) and everything it imports from this repository, as the text of one ES module.
 * `sourcemap`: carry an inline map, so that stack traces name the TypeScript file and line; by default only when this
 * process has source maps on (NODE_OPTIONS=--enable-source-maps). Not always: measured in the boot storm, the map
 * costs ~7 MiB of resident memory unused, and with source maps on heph took 15–20 MiB more at the peak and 0.4 s more
 * CPU, as every stack trace captured is mapped.
 */
export async function bundle(entry, { sourcemap = process.sourceMapsEnabled } = {}) {
  try {
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: sourcemap ? 'inline' : false,
      sourcesContent: false,
      plugins: [inPlace],
      write: false,
      // Never written: it places the map's sources, which sourceRoot then makes absolute wherever the bundle runs.
      outfile: fileURLToPath(new URL('../bundle.mjs', import.meta.url)),
      sourceRoot: new URL('../', import.meta.url).href,
      logLevel: 'error',
    });
    return out.outputFiles[0].text;
  } finally {
    // The esbuild process serving the build has nothing more to do.
    await stop();
  }
}
