// The config renderer's thread: renderConfig (render.ts) for the main thread, one request at a time, with its own
// template cache. Rendering is pure CPU (parse, patch, stringify, read back, validate: 3-6 ms on this VM), the one
// request step that needs no I/O; here it no longer holds every other request of the event loop up.
import { parentPort } from 'node:worker_threads';
import { renderConfig, type RenderInput } from './render.ts';

parentPort!.on('message', (m: { id: number; input: RenderInput }) => {
  parentPort!.postMessage({ id: m.id, result: renderConfig(m.input) });
});
