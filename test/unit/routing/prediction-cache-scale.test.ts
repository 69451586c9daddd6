/**
 * The prediction cache at scale: a 140,000-entry fill (past one chunk's 2^17 records) and a 20,000-step run
 * against a reference LRU. They take most of the cache's test time (about 1.5 s of 2.5 s unmutated), so they
 * live apart from prediction-cache.test.ts: the mutation runner (test/mutation/mutant-tests.ts) runs only a
 * file's own test, `prediction-cache.test.js`, whose mutants of sizes and probe loops would otherwise each
 * spend seconds here. `npm test` runs both files.
 */
import test from 'ava';
import { PredictionCache, predictionKey, recordBytes, type Prediction } from '../../../src/routing/prediction-cache.js';

const prediction = (model = 'm', version = '1', scores = new Float32Array([0.25, 0.75])): Prediction => ({ scores, model, version });

test('many entries through a full cache: exactly an LRU of its capacity (a reference model agrees on every lookup)', async (t) => {
  const maxBytes = 64 * 1024;
  const cache = new PredictionCache(maxBytes);
  const scoresOf = (i: number) => new Float32Array([i, -i, i / 7]);
  const keyOf = (i: number) => predictionKey(`m${i % 3}`, '1', new Float32Array([i]));
  // Fill until the first eviction: that is the capacity.
  let capacity = 0;
  while (cache.evictions === 0) {
    await cache.getOrEvaluate(keyOf(capacity), async () => prediction(`m${capacity % 3}`, '1', scoresOf(capacity)));
    capacity++;
  }
  capacity--;
  t.true(capacity > 500, `capacity ${capacity}`);
  t.true(capacity * recordBytes(3) > 0.7 * maxBytes, 'records use most of the bound');
  const reference = new Map<number, true>();
  for (let i = 1; i <= capacity; i++) reference.set(i, true);
  let seed = 7;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let step = 0; step < 20_000; step++) {
    // Mostly recent keys (hits), sometimes new ones (evictions), sometimes evicted ones (misses again).
    const i = Math.floor(random() * (capacity * 1.5)) + Math.floor(step / 10);
    const expectHit = reference.has(i);
    const { prediction: got, outcome } = await cache.getOrEvaluate(keyOf(i), async () => prediction(`m${i % 3}`, '1', scoresOf(i)));
    if (outcome !== (expectHit ? 'hit' : 'miss')) return t.fail(`step ${step}, key ${i}: ${outcome}, expected ${expectHit ? 'hit' : 'miss'}`);
    if (got.scores[0] !== i || got.model !== `m${i % 3}`) return t.fail(`step ${step}: key ${i} answered ${got.scores[0]} of ${got.model}`);
    reference.delete(i);
    reference.set(i, true);
    if (reference.size > capacity) reference.delete(reference.keys().next().value as number);
  }
  t.is(cache.size.entries, capacity);
  t.true(cache.size.heldBytes <= maxBytes);
});

test('outputs with no values still fit a chunk\'s record ids (at most 2^17 records per chunk)', async (t) => {
  const cache = new PredictionCache(64 * 1024 * 1024);
  const empty = prediction('m', '1', new Float32Array(0));
  const count = 140_000;
  for (let i = 0; i < count; i++) await cache.getOrEvaluate(predictionKey('m', '1', new Float32Array([i])), async () => empty);
  t.is(cache.size.entries, count);
  t.is(cache.peek(predictionKey('m', '1', new Float32Array([0])))?.scores.length, 0, 'the first entry is still found');
  t.is(cache.peek(predictionKey('m', '1', new Float32Array([count - 1])))?.model, 'm');
});
