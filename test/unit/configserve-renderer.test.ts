// The config renderer's worker thread: the same bytes as rendering inline, replies matched to their requests, and a
// dead worker fails what it held and is replaced by the next render.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderConfig, type RenderInput } from '../../src/configserve/render.ts';
import { Renderer } from '../../src/configserve/renderer.ts';
import { WORKER } from './configserve-fixtures.ts';

const input = (i: number): RenderInput => ({ base: WORKER, patches: [`machine:\n  nodeLabels:\n    n: "${i}"\n`], machine: { hostname: `w-${i}`, labels: { rack: `r${i % 3}` } } });

test('renders on the worker exactly what renderConfig renders inline, each reply to its own request', async () => {
  const r = new Renderer();
  try {
    const got = await Promise.all(Array.from({ length: 30 }, (_, i) => r.render(input(i))));
    got.forEach((g, i) => assert.deepEqual(g, renderConfig(input(i)), `render ${i}`));
    const refused = await r.render({ base: WORKER, patches: ['machine: [\n'] });
    assert.ok(!refused.ok && /^patch 1: YAML: /.test(refused.errors[0]!));
    assert.equal(r.starts, 1, 'one worker serves them all');
  } finally {
    await r.stop();
  }
});

test('a dead worker fails the renders it held; the next render starts a new one', async () => {
  const r = new Renderer();
  try {
    await r.render(input(1));
    const worker = (r as unknown as { worker: { terminate(): Promise<number> } }).worker;
    const held = r.render(input(2));
    await worker.terminate();
    await assert.rejects(held, /config renderer exited/);
    assert.deepEqual(await r.render(input(3)), renderConfig(input(3)));
    assert.equal(r.starts, 2);
  } finally {
    await r.stop();
  }
  // Stopping one that never rendered is a no-op.
  await new Renderer().stop();
});
