import test from 'ava';
import { PredictionCache, predictionKey, type Prediction } from '../../../src/routing/prediction-cache.js';

const prediction = (model = 'm', version = '1', scores = new Float32Array([0.25, 0.75])): Prediction => ({ scores, model, version });

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An evaluation that counts its calls and answers `p`. */
function counting(p: Prediction = prediction()): { evaluate: () => Promise<Prediction>; calls: () => number } {
  let calls = 0;
  return {
    evaluate: async () => {
      calls++;
      return p;
    },
    calls: () => calls,
  };
}

/** What one entry counts for: its scores, its key as UTF-16, 64 bytes of overhead. */
const entryBytes = (key: string, p: Prediction) => p.scores.byteLength + key.length * 2 + 64;

test('predictionKey: equal bytes give equal keys, whatever the view type', (t) => {
  const f = new Float32Array([1, 2, 3]);
  const asBytes = new Uint8Array(f.buffer.slice(0));
  const inBigger = new Float32Array([9, 1, 2, 3, 9]).subarray(1, 4);
  const key = predictionKey('m', '1', f);
  t.is(predictionKey('m', '1', new Float32Array([1, 2, 3])), key);
  t.is(predictionKey('m', '1', asBytes), key);
  t.is(predictionKey('m', '1', inBigger), key, 'only the view\'s bytes count, not the whole buffer');
  t.regex(key, /^m@1#/);
});

test('predictionKey: model, version and every input byte are in the key', (t) => {
  const base = predictionKey('m', '1', new Float32Array([1, 2, 3]));
  const variants: [string, string][] = [
    ['other version', predictionKey('m', '2', new Float32Array([1, 2, 3]))],
    ['other model', predictionKey('n', '1', new Float32Array([1, 2, 3]))],
    ['other value', predictionKey('m', '1', new Float32Array([1, 2, 4]))],
    ['other order', predictionKey('m', '1', new Float32Array([3, 2, 1]))],
    ['shorter', predictionKey('m', '1', new Float32Array([1, 2]))],
    ['int32 of the same numbers', predictionKey('m', '1', new Int32Array([1, 2, 3]))],
    ['longer', predictionKey('m', '1', new Float32Array([1, 2, 3, 0]))],
  ];
  const all = new Set([base, ...variants.map(([, k]) => k)]);
  t.is(all.size, variants.length + 1, 'all keys distinct');
  t.not(predictionKey('m', '1', new Float32Array([0])), predictionKey('m', '1', new Float32Array([-0])));
});

test('a miss evaluates and caches; the same key then hits without evaluating', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const p = prediction();
  const { evaluate, calls } = counting(p);
  const key = predictionKey('m', '1', new Float32Array([1, 2]));
  const first = await cache.getOrEvaluate(key, evaluate);
  t.is(first.outcome, 'miss');
  t.is(first.prediction, p);
  const second = await cache.getOrEvaluate(key, evaluate);
  t.is(second.outcome, 'hit');
  t.is(second.prediction, p);
  t.is(calls(), 1);
  t.deepEqual([cache.hits, cache.misses, cache.shared], [1, 1, 0]);
  t.is(cache.peek(key), p);
  t.deepEqual(cache.size, { entries: 1, bytes: entryBytes(key, p) });
});

test('the same input under another version misses', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const input = new Float32Array([1, 2]);
  const v1 = counting(prediction('m', '1'));
  const v2 = counting(prediction('m', '2'));
  await cache.getOrEvaluate(predictionKey('m', '1', input), v1.evaluate);
  const other = await cache.getOrEvaluate(predictionKey('m', '2', input), v2.evaluate);
  t.is(other.outcome, 'miss');
  t.is(other.prediction.version, '2');
  t.is(v2.calls(), 1);
  const back = await cache.getOrEvaluate(predictionKey('m', '1', input), v1.evaluate);
  t.is(back.outcome, 'hit');
  t.is(back.prediction.version, '1');
});

test('concurrent identical lookups share one evaluation', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const gate = deferred<Prediction>();
  let calls = 0;
  const evaluate = () => {
    calls++;
    return gate.promise;
  };
  const key = predictionKey('m', '1', new Float32Array([7]));
  const lookups = [cache.getOrEvaluate(key, evaluate), cache.getOrEvaluate(key, evaluate), cache.getOrEvaluate(key, evaluate)];
  const p = prediction();
  gate.resolve(p);
  const results = await Promise.all(lookups);
  t.is(calls, 1);
  t.deepEqual(results.map((r) => r.outcome), ['miss', 'shared', 'shared']);
  for (const r of results) t.is(r.prediction, p);
  t.deepEqual([cache.hits, cache.misses, cache.shared], [0, 1, 2]);
  t.is((await cache.getOrEvaluate(key, evaluate)).outcome, 'hit');
  t.is(calls, 1);
});

test('a rejected evaluation rejects everyone waiting on it and is not cached', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const gate = deferred<Prediction>();
  const key = predictionKey('m', '1', new Float32Array([3]));
  const boom = new Error('model exploded');
  const first = cache.getOrEvaluate(key, () => gate.promise);
  const joined = cache.getOrEvaluate(key, () => gate.promise);
  gate.reject(boom);
  t.is(await t.throwsAsync(first), boom);
  t.is(await t.throwsAsync(joined), boom);
  t.is(cache.peek(key), undefined);
  t.is(cache.size.entries, 0);
  const retry = counting();
  const again = await cache.getOrEvaluate(key, retry.evaluate);
  t.is(retry.calls(), 1, 'the next lookup evaluates again');
  t.is(again.outcome, 'miss');
});

test('an evaluation that throws synchronously rejects and is not cached', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const key = predictionKey('m', '1', new Float32Array([4]));
  await t.throwsAsync(cache.getOrEvaluate(key, () => { throw new Error('sync'); }), { message: 'sync' });
  t.is(cache.size.entries, 0);
  t.is((await cache.getOrEvaluate(key, counting().evaluate)).outcome, 'miss');
});

test('the cache stays within maxBytes, evicting least recently used entries', async (t) => {
  const p = prediction('m', '1', new Float32Array(10));
  const keys = Array.from({ length: 6 }, (_, i) => predictionKey('m', '1', new Float32Array([i])));
  const one = entryBytes(keys[0] as string, p);
  const cases: [maxBytes: number, fits: number][] = [
    [one, 1],
    [2 * one + 1, 2],
    [3 * one - 1, 2],
    [3 * one, 3],
  ];
  for (const [maxBytes, fits] of cases) {
    const cache = new PredictionCache(maxBytes);
    for (const key of keys) {
      await cache.getOrEvaluate(key, async () => p);
      t.true(cache.size.bytes <= maxBytes, `${cache.size.bytes} <= ${maxBytes}`);
    }
    t.is(cache.size.entries, fits, `maxBytes ${maxBytes}`);
    t.is(cache.size.bytes, fits * one);
    const kept = keys.filter((k) => cache.peek(k) !== undefined);
    t.deepEqual(kept, keys.slice(keys.length - fits), 'the most recent entries survive');
    t.is((await cache.getOrEvaluate(keys[0] as string, async () => p)).outcome, 'miss', 'an evicted entry is evaluated again');
  }
});

test('a prediction larger than maxBytes is answered but not cached', async (t) => {
  const cache = new PredictionCache(64);
  const big = prediction('m', '1', new Float32Array(100));
  const key = predictionKey('m', '1', new Float32Array([1]));
  const { evaluate, calls } = counting(big);
  const first = await cache.getOrEvaluate(key, evaluate);
  t.is(first.prediction, big);
  t.deepEqual(cache.size, { entries: 0, bytes: 0 });
  t.is((await cache.getOrEvaluate(key, evaluate)).outcome, 'miss');
  t.is(calls(), 2);
});

test('a hit refreshes recency, so the entry outlives older ones', async (t) => {
  const p = prediction('m', '1', new Float32Array(10));
  const [a, b, c] = [1, 2, 3].map((i) => predictionKey('m', '1', new Float32Array([i]))) as [string, string, string];
  const cache = new PredictionCache(2 * entryBytes(a, p));
  await cache.getOrEvaluate(a, async () => p);
  await cache.getOrEvaluate(b, async () => p);
  t.is((await cache.getOrEvaluate(a, async () => p)).outcome, 'hit');
  await cache.getOrEvaluate(c, async () => p);
  t.not(cache.peek(a), undefined);
  t.is(cache.peek(b), undefined);
  t.not(cache.peek(c), undefined);
});

test('maxBytes 0 disables the cache: every lookup evaluates', async (t) => {
  const cache = new PredictionCache(0);
  t.false(cache.enabled);
  const { evaluate, calls } = counting();
  const key = predictionKey('m', '1', new Float32Array([1]));
  const outcomes = [];
  for (let i = 0; i < 3; i++) outcomes.push((await cache.getOrEvaluate(key, evaluate)).outcome);
  t.deepEqual(outcomes, ['disabled', 'disabled', 'disabled']);
  t.is(calls(), 3);
  t.deepEqual(cache.size, { entries: 0, bytes: 0 });
  t.is(cache.peek(key), undefined);
  t.deepEqual([cache.hits, cache.misses, cache.shared], [0, 0, 0]);
  await t.throwsAsync(cache.getOrEvaluate(key, async () => { throw new Error('no'); }), { message: 'no' });
});

test('clear empties the cache', async (t) => {
  const cache = new PredictionCache(1 << 20);
  t.true(cache.enabled);
  const key = predictionKey('m', '1', new Float32Array([1]));
  await cache.getOrEvaluate(key, counting().evaluate);
  cache.clear();
  t.deepEqual(cache.size, { entries: 0, bytes: 0 });
  t.is((await cache.getOrEvaluate(key, counting().evaluate)).outcome, 'miss');
});

test('a joiner whose shared evaluation fails looks again when retryShared allows: it runs its own evaluation', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const leaderGate = deferred<Prediction>();
  const key = predictionKey('m', '1', new Float32Array([5]));
  const expired = new Error('expired with the first caller');
  const asked: unknown[] = [];
  const first = cache.getOrEvaluate(key, () => leaderGate.promise);
  const own = counting();
  const joiner = cache.getOrEvaluate(key, own.evaluate, (error) => (asked.push(error), true));
  leaderGate.reject(expired);
  t.is(await t.throwsAsync(first), expired, 'the first caller fails with its own evaluation');
  const result = await joiner;
  t.deepEqual(asked, [expired]);
  t.is(own.calls(), 1);
  t.is(result.outcome, 'miss');
  t.deepEqual([cache.misses, cache.shared, cache.rejoined], [2, 1, 1]);
  t.is((await cache.getOrEvaluate(key, own.evaluate)).outcome, 'hit');
});

test('retryShared saying no, or a caller\'s own evaluation failing: the error stands, no second look', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const key = predictionKey('m', '1', new Float32Array([6]));
  const gate = deferred<Prediction>();
  const boom = new Error('the model threw');
  const retried: string[] = [];
  const first = cache.getOrEvaluate(key, () => gate.promise, () => (retried.push('first'), true));
  const joiner = cache.getOrEvaluate(key, () => gate.promise, () => (retried.push('joiner'), false));
  gate.reject(boom);
  t.is(await t.throwsAsync(first), boom);
  t.is(await t.throwsAsync(joiner), boom);
  t.deepEqual(retried, ['joiner'], 'only a joiner is asked; the caller that ran the evaluation is not');
  t.is(cache.rejoined, 0);
});

test('joiners that look again share one new evaluation, led by the first of them', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const key = predictionKey('m', '1', new Float32Array([7]));
  const gate = deferred<Prediction>();
  const first = cache.getOrEvaluate(key, () => gate.promise);
  const own = counting();
  const joiners = [cache.getOrEvaluate(key, own.evaluate, () => true), cache.getOrEvaluate(key, own.evaluate, () => true)];
  gate.reject(new Error('refused'));
  await t.throwsAsync(first);
  const results = await Promise.all(joiners);
  t.is(own.calls(), 1);
  t.deepEqual(results.map((r) => r.outcome), ['miss', 'shared']);
});
