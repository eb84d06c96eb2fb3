// Worker threads carry their job's name into the OS (top -H, perf), and the packet planes a higher CPU priority.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { priorityShortfall, startWorker, threadNice } from '../../src/threads.ts';
import { REPO, tempDir } from '../helpers/heph.ts';

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

/** A module that says it is up and then stays until terminated, like a packet plane. */
function stayingProbe(dir: string): URL {
  const module = join(dir, 'stay.ts');
  writeFileSync(module, "import { parentPort } from 'node:worker_threads';\nsetInterval(() => {}, 1000);\nparentPort!.postMessage('up');\n");
  return pathToFileURL(module);
}

const ROOT = process.getuid?.() === 0 ? false : 'needs root (raising a priority, taking a capability away)';

test('a worker started with a priority boost runs that many nice levels above the thread that started it; the others keep its priority', { skip: ROOT }, async () => {
  const dir = tempDir('heph-threads-');
  const workers = [startWorker('heph-boosted', stayingProbe(dir.path), null, [], { priorityBoost: 4 }), startWorker('heph-plain', stayingProbe(dir.path), null)];
  try {
    await Promise.all(workers.map((w) => once(w, 'message')));
    const own = getPriority(0);
    assert.equal(threadNice('heph-boosted'), Math.max(-20, own - 4));
    assert.equal(threadNice('heph-plain'), own);
    assert.equal(getPriority(0), own, "the starter's own priority is untouched");
    assert.equal(priorityShortfall('heph-boosted', 4), undefined);
    assert.equal(priorityShortfall('heph-absent', 4), 'no thread named heph-absent is running');
    // Asked for more than the thread has: the shortfall is named.
    assert.match(priorityShortfall('heph-plain', 4) ?? '', /^heph-plain runs at nice -?\d+, not -?\d+: raising a thread's priority needs root or CAP_SYS_NICE$/);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    dir.remove();
  }
});

test('without CAP_SYS_NICE the boosted worker still runs, at its starter\'s priority, and priorityShortfall says why', { skip: ROOT }, async () => {
  const dir = tempDir('heph-threads-');
  try {
    const script = join(dir.path, 'main.mts');
    writeFileSync(
      script,
      [
        `import { once } from 'node:events';`,
        `import { priorityShortfall, startWorker } from ${JSON.stringify(pathToFileURL(join(REPO, 'src/threads.ts')).href)};`,
        `const w = startWorker('heph-boosted', new URL(${JSON.stringify(stayingProbe(dir.path).href)}), null, [], { priorityBoost: 4 });`,
        `await once(w, 'message');`,
        `console.log(JSON.stringify({ shortfall: priorityShortfall('heph-boosted', 4) }));`,
        `await w.terminate();`,
      ].join('\n'),
    );
    // Root without CAP_SYS_NICE: dropped from the inheritable and bounding sets, so node never has it.
    const out = execFileSync('setpriv', ['--inh-caps=-sys_nice', '--bounding-set=-sys_nice', process.execPath, '--import', 'tsx', script], { cwd: REPO, encoding: 'utf8' });
    const { shortfall } = JSON.parse(out.trim().split('\n').at(-1)!) as { shortfall?: string };
    assert.match(shortfall ?? '', /^heph-boosted runs at nice (-?\d+), not (-?\d+): raising a thread's priority needs root or CAP_SYS_NICE$/);
  } finally {
    dir.remove();
  }
});
