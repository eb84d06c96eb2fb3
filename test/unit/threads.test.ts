// Worker threads carry their job's name into the OS (top -H, perf): startWorker names each one.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { startWorker } from '../../src/threads.ts';
import { tempDir } from '../helpers/heph.ts';

const threadNames = (): string[] => readdirSync('/proc/self/task').map((t) => readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim());

test('a worker started as heph-probe runs as an OS thread of that name (cut to the kernel\'s 15 bytes), and the name leaves with it', async () => {
  const dir = tempDir('heph-threads-');
  try {
    const module = join(dir.path, 'probe.ts');
    writeFileSync(module, "import { parentPort, workerData } from 'node:worker_threads';\nparentPort!.postMessage((workerData as { data: string }).data);\n");
    assert.ok(!threadNames().includes('heph-probe'));
    const worker = startWorker('heph-probe-with-a-long-name', pathToFileURL(module), 'up');
    const [said] = (await once(worker, 'message')) as [string];
    assert.equal(said, 'up', 'the module runs, with its data');
    assert.ok(threadNames().includes('heph-probe-with'), threadNames().join(', '));
    await worker.terminate();
    // 'exit' may come a moment before the OS thread is joined.
    for (let i = 0; i < 100 && threadNames().includes('heph-probe-with'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(!threadNames().includes('heph-probe-with'));
  } finally {
    dir.remove();
  }
});
