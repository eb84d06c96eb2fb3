// The config renderer's thread: renderConfig (render.ts) for the main thread, one request at a time, with its own
// template and stencil caches. Rendering is pure CPU, the one request step that needs no I/O: a shape's first render
// (parse, patch, stringify, read back, validate) takes 3-6 ms on this VM for a small config, more for a large one;
// here it does not hold every other request of the event loop up. Machines after the first of a shape take ~0.1-0.3 ms.
import { parentPort } from 'node:worker_threads';
import { renderConfig, type RenderInput } from './render.ts';

parentPort!.on('message', (m: { id: number; input: RenderInput }) => {
  parentPort!.postMessage({ id: m.id, result: renderConfig(m.input) });
});
