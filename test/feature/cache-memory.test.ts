import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import { Clipper } from '../../src/index.js';
import { fixtureModels } from '../helpers/fixtures.js';

// Issue 15: the cache's bound is real. With a 2 MiB bound and many more distinct inputs than fit, the memory
// the process keeps after the run (V8 heap plus ArrayBuffers, measured after forced full collections) grows by
// no more than 1.2x the bound beyond what the same traffic kept through an application without a cache (the cache on lru-cache grew by 4.3 MiB here). Real worker threads, and a JS model
// with 4 inputs and 64 outputs: an entry is about 300 bytes (small entries are where per-entry objects cost
// most) and the cache turns over about 3 times. Narrow inputs on purpose: an input transferred to a worker
// leaves a backing store in this process's ArrayBuffer count that is freed late, megabytes of noise.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MiB = 1024 * 1024;
const bound = 2 * MiB;
const width = 4;
const outputs = 64;

/** Heap and ArrayBuffers the process holds once garbage is gone: full GCs until two readings agree within 64 KiB. */
async function settledBytes(): Promise<number> {
  let last = -Infinity;
  for (let i = 0; i < 30; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const m = process.memoryUsage();
    const now = m.heapUsed + m.arrayBuffers;
    if (Math.abs(now - last) < 64 * 1024) return now;
    last = now;
  }
  return last;
}

async function run(clipper: Clipper, app: string, from: number, count: number): Promise<number> {
  let defaults = 0;
  let next = from;
  const end = from + count;
  const lane = async (): Promise<void> => {
    const input = new Float32Array(width);
    while (next < end) {
      const i = next++;
      input.fill(i % 7);
      input[0] = i;
      const answer = await clipper.predict(app, input);
      if (answer.isDefault || !Array.isArray(answer.output) || answer.output.length !== outputs || answer.output[0] !== i) defaults++;
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  return defaults;
}

test('a cache bound of 2 MiB holds at most 1.2x that in measured memory after many evictions', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  t.teardown(() => clipper.stop());
  await clipper.deployModel({ name: 'wide', version: '1', path: 'wide/1/model.mjs', replicas: 1 });
  // Two applications on the same model: one without a cache, to measure what the same traffic keeps anyway
  // (bounded per-application records, such as the router's recent draws), and one with the bounded cache.
  await clipper.registerApp({ name: 'plain', inputType: 'float32', inputShape: [width], defaultOutput: -1, latencySloMs: 5000, cacheMaxBytes: 0 });
  await clipper.registerApp({ name: 'cached', inputType: 'float32', inputShape: [width], defaultOutput: -1, latencySloMs: 5000, cacheMaxBytes: bound });
  await clipper.linkModel('plain', 'wide');
  await clipper.linkModel('cached', 'wide');
  // Warm the paths (JIT, pools) with inputs the measured runs never repeat.
  await run(clipper, 'plain', -1000, 200);
  await run(clipper, 'cached', -1000, 200);
  const count = 20_000;
  const start = await settledBytes();
  t.is(await run(clipper, 'plain', 0, count), 0, 'every answer is the model\'s, and right');
  const withoutCache = await settledBytes();
  t.is(await run(clipper, 'cached', 0, count), 0, 'every answer is the model\'s, and right');
  const withCache = await settledBytes();
  // Conservative: this growth also holds the cached application's own bounded records (the plain one's took
  // `withoutCache - start`, shown in the log), so the cache alone costs less than it says.
  const growth = withCache - withoutCache;
  const { cache } = clipper.getApp('cached');
  t.log(`cache: ${cache.entries} entries, ${cache.bytes} bytes counted, ${cache.heldBytes} held; measured growth ${(growth / MiB).toFixed(2)} MiB (without a cache the same traffic kept ${((withoutCache - start) / MiB).toFixed(2)} MiB)`);
  t.true(cache.misses >= count, 'every input was new');
  t.true(cache.entries < count / 2, `the cache turned over (${cache.entries} entries of ${count} inputs)`);
  t.true(cache.heldBytes <= bound, `held ${cache.heldBytes} <= ${bound}`);
  t.true(cache.bytes >= 0.8 * bound, `entries count for ${cache.bytes} bytes: most of the bound is in use`);
  t.true(growth <= 1.2 * bound, `memory grew by ${growth} bytes more than without a cache; the bound is ${bound}`);
});
