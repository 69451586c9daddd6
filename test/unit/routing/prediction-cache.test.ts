import test from 'ava';
import { inputDigest, PredictionCache, predictionKey, recordBytes, type Prediction } from '../../../src/routing/prediction-cache.js';

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

/** What one entry's record counts for. */
const entryBytes = (p: Prediction) => recordBytes(p.scores.length);

test('predictionKey: equal bytes give equal keys, whatever the view type', (t) => {
  const f = new Float32Array([1, 2, 3]);
  const asBytes = new Uint8Array(f.buffer.slice(0));
  const inBigger = new Float32Array([9, 1, 2, 3, 9]).subarray(1, 4);
  const key = predictionKey('m', '1', f);
  t.is(predictionKey('m', '1', new Float32Array([1, 2, 3])), key);
  t.is(predictionKey('m', '1', asBytes), key);
  t.is(predictionKey('m', '1', inBigger), key, 'only the view\'s bytes count, not the whole buffer');
  t.regex(key, /^m@1#[0-9a-f]{32}$/);
  t.is(predictionKey('m', '1', inputDigest(f)), key, 'a digest computed once builds the same key');
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
  t.deepEqual(second.prediction, p, 'a hit answers a copy of the stored scores, with model and version');
  t.not(second.prediction.scores, p.scores, 'the cache keeps no reference to the evaluated scores');
  t.is(calls(), 1);
  t.deepEqual([cache.hits, cache.misses, cache.shared], [1, 1, 0]);
  t.deepEqual(cache.peek(key), p);
  const { entries, bytes, heldBytes } = cache.size;
  t.deepEqual({ entries, bytes }, { entries: 1, bytes: entryBytes(p) });
  t.true(heldBytes >= bytes && heldBytes <= 1 << 20);
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
  for (const r of results) t.is(r.prediction, p, 'everyone who waited gets the evaluated prediction itself');
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

test('the cache holds at most maxBytes, evicting least recently used entries', async (t) => {
  const p = prediction('m', '1', new Float32Array(10));
  const keys = Array.from({ length: 6 }, (_, i) => predictionKey('m', '1', new Float32Array([i])));
  const one = entryBytes(p);
  // One record, its index of 2 slots: the smallest bound that caches anything.
  const cases: [maxBytes: number, fits: number][] = [
    [one + 8 - 1, 0],
    [one + 8, 1],
    [2 * one + 16, 2],
    [3 * one + 32, 3],
    [4 * one + 32, 4],
  ];
  for (const [maxBytes, fits] of cases) {
    const cache = new PredictionCache(maxBytes);
    for (const key of keys) {
      await cache.getOrEvaluate(key, async () => p);
      t.true(cache.size.heldBytes <= maxBytes, `${cache.size.heldBytes} <= ${maxBytes}`);
    }
    t.is(cache.size.entries, fits, `maxBytes ${maxBytes}`);
    t.is(cache.size.bytes, fits * one);
    const kept = keys.filter((k) => cache.peek(k) !== undefined);
    t.deepEqual(kept, keys.slice(keys.length - fits), 'the most recent entries survive');
    t.is((await cache.getOrEvaluate(keys[0] as string, async () => p)).outcome, 'miss', 'an evicted entry is evaluated again');
  }
});

test('outputs of several widths share the bound; chunks left empty are given back to the width that needs them', async (t) => {
  const maxBytes = 32 * 1024;
  const cache = new PredictionCache(maxBytes);
  for (let i = 0; i < 2000; i++) {
    const width = [1, 10, 100][i % 3] as number;
    const key = predictionKey(`w${width}`, '1', new Float32Array([i]));
    const p = prediction(`w${width}`, '1', new Float32Array(width).fill(i));
    await cache.getOrEvaluate(key, async () => p);
    t.true(cache.size.heldBytes <= maxBytes);
    t.deepEqual(cache.peek(key)?.scores, p.scores, 'the entry just stored is held');
  }
  // Then only the widest: the others' chunks empty out and their bytes go to it.
  for (let i = 0; i < 2000; i++) await cache.getOrEvaluate(predictionKey('w100', '1', new Float32Array([-i - 1])), async () => prediction('w100', '1', new Float32Array(100)));
  t.true(cache.size.bytes > 0.6 * maxBytes, `${cache.size.bytes} of ${maxBytes} in use`);
  t.true(cache.size.heldBytes <= maxBytes);
});

test('a prediction larger than maxBytes is answered but not cached', async (t) => {
  const cache = new PredictionCache(64);
  const big = prediction('m', '1', new Float32Array(100));
  const key = predictionKey('m', '1', new Float32Array([1]));
  const { evaluate, calls } = counting(big);
  const first = await cache.getOrEvaluate(key, evaluate);
  t.is(first.prediction, big);
  t.deepEqual(cache.size, { entries: 0, bytes: 0, heldBytes: 0 });
  t.is((await cache.getOrEvaluate(key, evaluate)).outcome, 'miss');
  t.is(calls(), 2);
});

test('a hit refreshes recency, so the entry outlives older ones', async (t) => {
  const p = prediction('m', '1', new Float32Array(10));
  const [a, b, c] = [1, 2, 3].map((i) => predictionKey('m', '1', new Float32Array([i]))) as [string, string, string];
  const cache = new PredictionCache(2 * entryBytes(p) + 16);
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
  t.deepEqual(cache.size, { entries: 0, bytes: 0, heldBytes: 0 });
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
  t.deepEqual(cache.size, { entries: 0, bytes: 0, heldBytes: 0 });
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

test('a key whose digest is not 32 hex digits still works (it is hashed), and never meets a digest key', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const p = prediction();
  await cache.getOrEvaluate('m@1#not-a-digest', async () => p);
  t.deepEqual(cache.peek('m@1#not-a-digest'), p);
  t.is(cache.peek('m@1#other'), undefined);
  t.is(cache.peek(predictionKey('m', '1', new Float32Array([1]))), undefined);
});
