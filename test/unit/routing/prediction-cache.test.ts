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

/** Index slots for `records` records: the smallest power of two at least twice as many. */
const indexSlots = (records: number) => 2 ** Math.max(1, Math.ceil(Math.log2(2 * records)));

/** A digest of 32 hex digits with every digit in it, some twice. */
const BASE_DIGEST = '0123456789abcdef0f1e2d3c4b5a6978';
/** The key of `digest` for model m, version 1, written by hand (predictionKey would hash a Float32Array). */
const digestKey = (digest: string) => `m@1#${digest}`;
/** BASE_DIGEST with the digit at `at` replaced by `digit`. */
const withDigit = (at: number, digit: string) => BASE_DIGEST.slice(0, at) + digit + BASE_DIGEST.slice(at + 1);

test('inputDigest: always 32 hex digits, leading zeros included', (t) => {
  let input = 0;
  while (BigInt(`0x${inputDigest(new Float32Array([input]))}`) >= 1n << 124n) input++;
  const digest = inputDigest(new Float32Array([input]));
  t.regex(digest, /^0[0-9a-f]{31}$/, `input ${input}`);
});

test('a bound that is not positive disables the cache: maxBytes is 0', (t) => {
  for (const bound of [-1, -1024, Number.NaN]) {
    const cache = new PredictionCache(bound);
    t.is(cache.maxBytes, 0, String(bound));
    t.false(cache.enabled);
  }
});

test('an evaluation that resolves to nothing rejects, names the key, and is not cached', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const key = predictionKey('m', '1', new Float32Array([8]));
  await t.throwsAsync(cache.getOrEvaluate(key, async () => undefined as unknown as Prediction), {
    message: `prediction cache: evaluation of ${key} produced nothing`,
  });
  t.is(cache.size.entries, 0);
  t.is((await cache.getOrEvaluate(key, counting().evaluate)).outcome, 'miss');
});

test('peek does not refresh recency: the entry peeked at is still the first evicted', async (t) => {
  const p = prediction('m', '1', new Float32Array(10));
  const [a, b, c] = [1, 2, 3].map((i) => predictionKey('m', '1', new Float32Array([i]))) as [string, string, string];
  const cache = new PredictionCache(2 * entryBytes(p) + 16);
  await cache.getOrEvaluate(a, async () => p);
  await cache.getOrEvaluate(b, async () => p);
  t.deepEqual(cache.peek(a), p);
  await cache.getOrEvaluate(c, async () => p);
  t.is(cache.peek(a), undefined, 'a was least recently used: a peek is not a use');
  t.not(cache.peek(b), undefined);
});

test('a key with no digest part is its own model@version: a hit names them', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const p = prediction('m', '1');
  await cache.getOrEvaluate('m@1', async () => p);
  t.deepEqual(cache.peek('m@1'), p);
  t.is(cache.peek('m@2'), undefined);
});

test('a digest is read as its 128-bit value: its upper-case spelling names the same entry', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const p = prediction();
  await cache.getOrEvaluate(digestKey(BASE_DIGEST), async () => p);
  t.deepEqual(cache.peek(digestKey(BASE_DIGEST.toUpperCase())), p);
  t.is(cache.peek(`n@1#${BASE_DIGEST.toUpperCase()}`), undefined, 'in its own model@version only');
});

test('two spellings of one digest evaluated at once: the first answer stored is kept, as one entry', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const [lower, upper] = [deferred<Prediction>(), deferred<Prediction>()];
  const first = cache.getOrEvaluate(digestKey(BASE_DIGEST), () => lower.promise);
  const second = cache.getOrEvaluate(digestKey(BASE_DIGEST.toUpperCase()), () => upper.promise);
  const [p1, p2] = [prediction('m', '1', new Float32Array([1])), prediction('m', '1', new Float32Array([2]))];
  lower.resolve(p1);
  upper.resolve(p2);
  t.deepEqual((await Promise.all([first, second])).map((r) => r.outcome), ['miss', 'miss']);
  t.is(cache.size.entries, 1);
  t.deepEqual(cache.peek(digestKey(BASE_DIGEST.toUpperCase()))?.scores, p1.scores);
});

test('digests that differ in any one hex digit are different entries; so are other suffixes', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const keys = [digestKey(BASE_DIGEST)];
  for (let at = 0; at < 32; at++) {
    for (const digit of '0123456789abcdef') if (digit !== BASE_DIGEST[at]) keys.push(digestKey(withDigit(at, digit)));
  }
  // Not digests (hashed): 32 characters that are not all hex digits, and 33 hex digits. A non-digit read as
  // a digit would meet one of the digests after them (g or G as 16, ':' as 3, x as 65).
  const zeros = (tail: string) => digestKey(`${'0'.repeat(32 - tail.length)}${tail}`);
  keys.push(digestKey('x'.repeat(32)), digestKey('y'.repeat(32)), digestKey(`${BASE_DIGEST}0`), digestKey(`${BASE_DIGEST}1`));
  keys.push(...['g', 'G', ':', 'x', '10', '3', '41'].map(zeros));
  for (const [i, key] of keys.entries()) await cache.getOrEvaluate(key, async () => prediction('m', '1', new Float32Array([i])));
  t.is(cache.size.entries, keys.length);
  const wrong = keys.filter((key, i) => cache.peek(key)?.scores[0] !== i);
  t.deepEqual(wrong, []);
});

test('hashed keys use all 128 bits of their hash (these two agree in the top 32)', async (t) => {
  const cache = new PredictionCache(1 << 20);
  const keys = ['m@1#k35223', 'm@1#k51717'];
  for (const [i, key] of keys.entries()) await cache.getOrEvaluate(key, async () => prediction('m', '1', new Float32Array([i])));
  t.deepEqual(keys.map((key) => cache.peek(key)?.scores[0]), [0, 1]);
});

test('one input under two models: neither answers for the other, even where one\'s probe passes the other\'s entry', async (t) => {
  // Digests chosen for the index's home function (the first word XOR a multiple of the golden ratio for the
  // model@version, m@1 first, then n@1): in 4 slots, f and a (m@1) share home 1, so a sits at 2, which is
  // where b (n@1, a's digest) starts probing.
  const digest = (last: string) => `${'0'.repeat(31)}${last}`;
  const [f, a, b] = [`m@1#${digest('2')}`, `m@1#${digest('1')}`, `n@1#${digest('1')}`];
  const cache = new PredictionCache(320);
  for (const [i, k] of [f, a, b].entries()) await cache.getOrEvaluate(k, async () => prediction('m', '1', new Float32Array(10).fill(i)));
  t.is(cache.size.entries, 3);
  t.deepEqual([f, a, b].map((k) => cache.peek(k)?.scores[0]), [0, 1, 2]);
});

/**
 * Keys placed by hand in an index of 8 slots: 320 bytes hold four one-record chunks of 10 scores and such an
 * index. For the first model@version stored (m@1), a digest's home slot is its first word's low 3 bits XOR 1
 * (the index's home function); `n` tells keys of one home apart. The index is rebuilt, most recent entry
 * first, when the third key's chunk is added; the third and fourth keys are then placed in order.
 */
const homeKey = (home: number, n: number) => digestKey(`0000000${(home ^ 1).toString(16)}${'0'.repeat(23)}${n}`);
const eightSlots = (value: number) => async () => prediction('m', '1', new Float32Array(10).fill(value));

test('an eviction inside a run of entries that wraps past the index\'s end keeps the run reachable', async (t) => {
  // x1, x2, x3 share home 7: x2 and x1 sit at 7 and 0 (the rebuild), x3 at 1; f at 3.
  const [x1, x2, x3, f, y] = [homeKey(7, 1), homeKey(7, 2), homeKey(7, 3), homeKey(3, 0), homeKey(3, 1)];
  const cache = new PredictionCache(320);
  for (const [i, k] of [x1, x2, x3, f].entries()) await cache.getOrEvaluate(k, eightSlots(i));
  t.is(cache.evictions, 0);
  t.is((await cache.getOrEvaluate(x1, eightSlots(-1))).outcome, 'hit', 'x2 is now the least recently used');
  // y evicts x2 from slot 7: x1 and x3 (home 7) must move back to 7 and 0, or their probes would stop short.
  await cache.getOrEvaluate(y, eightSlots(4));
  t.is(cache.evictions, 1);
  t.is(cache.peek(x2), undefined);
  t.deepEqual([x1, x3, f, y].map((k) => cache.peek(k)?.scores[0]), [0, 2, 3, 4]);
});

test('an eviction just before a run that wraps past the index\'s end leaves the run where its probes find it', async (t) => {
  // e1 (home 6) at 6 and e2 (home 7) at 7 (the rebuild), e3 (home 7) wrapped to 0; f at 3.
  const [e1, e2, e3, f, y] = [homeKey(6, 1), homeKey(7, 1), homeKey(7, 2), homeKey(3, 0), homeKey(3, 1)];
  const cache = new PredictionCache(320);
  for (const [i, k] of [e1, e2, e3, f].entries()) await cache.getOrEvaluate(k, eightSlots(i));
  // y evicts e1 from slot 6: e2 and e3, whose probes start at 7, must stay at 7 and 0.
  await cache.getOrEvaluate(y, eightSlots(4));
  t.is(cache.evictions, 1);
  t.is(cache.peek(e1), undefined);
  t.deepEqual([e2, e3, f, y].map((k) => cache.peek(k)?.scores[0]), [1, 2, 3, 4]);
});

test('the first entry allocates one chunk, a sixteenth of the bound and at most 4 MiB or 2^17 records, and its index', async (t) => {
  const cases: [maxBytes: number, width: number, records: number][] = [
    [1 << 20, 2, Math.floor((1 << 20) / 16 / recordBytes(2))],
    [256 << 20, 2, Math.floor((4 << 20) / recordBytes(2))],
    [64 << 20, 0, 1 << 17],
  ];
  for (const [maxBytes, width, records] of cases) {
    const cache = new PredictionCache(maxBytes);
    await cache.getOrEvaluate(predictionKey('m', '1', new Float32Array([1])), async () => prediction('m', '1', new Float32Array(width)));
    t.deepEqual(cache.size, { entries: 1, bytes: recordBytes(width), heldBytes: records * recordBytes(width) + indexSlots(records) * 4 }, `${maxBytes} bytes, width ${width}: ${records} records`);
  }
});

test('a prediction whose record fits the bound but not with its index evicts nothing and is not cached', async (t) => {
  const small = prediction('m', '1', new Float32Array(0));
  const maxBytes = 200;
  const cache = new PredictionCache(maxBytes);
  for (let i = 0; i < 3; i++) await cache.getOrEvaluate(predictionKey('m', '1', new Float32Array([i])), async () => small);
  // 196 bytes: under 200 alone, over it with the 2 index slots (8 bytes) it needs.
  const big = prediction('m', '1', new Float32Array(196 / 4 - 7));
  t.is(recordBytes(big.scores.length), 196);
  const key = predictionKey('m', '1', new Float32Array([-1]));
  t.is((await cache.getOrEvaluate(key, async () => big)).prediction, big);
  t.is(cache.peek(key), undefined);
  t.is(cache.evictions, 0);
  t.is(cache.size.entries, 3);
});

test('chunks given back are reused: thousands of width changes in a one-chunk cache keep caching', async (t) => {
  // Each chunk holds one record and only one fits: every answer of the other width frees a chunk and takes a
  // new one, more times than there are chunk numbers (2^13) in all.
  const maxBytes = 150;
  const cache = new PredictionCache(maxBytes);
  const rounds = 9000;
  for (let i = 0; i < rounds; i++) {
    const width = i % 2 === 0 ? 10 : 20;
    await cache.getOrEvaluate(predictionKey('m', '1', new Float32Array([i])), async () => prediction('m', '1', new Float32Array(width).fill(i)));
  }
  t.is(cache.evictions, rounds - 1);
  t.deepEqual(cache.size, { entries: 1, bytes: recordBytes(20), heldBytes: recordBytes(20) + 2 * 4 });
  t.is(cache.peek(predictionKey('m', '1', new Float32Array([rounds - 1])))?.scores[0], rounds - 1);
});

test('a small cache under a long random workload is exactly an LRU of its capacity (a reference model agrees)', async (t) => {
  const maxBytes = 4096;
  const cache = new PredictionCache(maxBytes);
  const scoresOf = (i: number) => new Float32Array([i, -i, i / 7]);
  const modelOf = (i: number) => `m${i % 3}`;
  const keyOf = (i: number) => predictionKey(modelOf(i), '1', new Float32Array([i]));
  const evaluate = (i: number) => async () => prediction(modelOf(i), '1', scoresOf(i));
  let capacity = 0;
  // Bounded, so that a cache that never evicts fails here rather than looping until the mutation run's timeout.
  while (cache.evictions === 0 && capacity <= 10_000) await cache.getOrEvaluate(keyOf(capacity), evaluate(capacity++));
  capacity--;
  t.true(capacity > 40, `capacity ${capacity}`);
  t.is(cache.evictions, 1);
  const reference = new Map<number, true>();
  for (let i = 1; i <= capacity; i++) reference.set(i, true);
  let [seed, misses] = [11, 0];
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let step = 0; step < 4000; step++) {
    const i = Math.floor(random() * (capacity * 1.5)) + Math.floor(step / 20);
    const expectHit = reference.has(i);
    const { prediction: got, outcome } = await cache.getOrEvaluate(keyOf(i), evaluate(i));
    if (outcome !== (expectHit ? 'hit' : 'miss')) return t.fail(`step ${step}, key ${i}: ${outcome}, expected ${expectHit ? 'hit' : 'miss'}`);
    if (got.scores[1] !== -i || got.model !== modelOf(i)) return t.fail(`step ${step}: key ${i} answered ${got.scores[1]} of ${got.model}`);
    if (!expectHit) misses++;
    reference.delete(i);
    reference.set(i, true);
    if (reference.size > capacity) reference.delete(reference.keys().next().value as number);
  }
  t.true(misses > 500, `${misses} misses`);
  t.is(cache.evictions, 1 + misses);
  t.deepEqual(cache.size, { entries: capacity, bytes: capacity * recordBytes(3), heldBytes: cache.size.heldBytes });
  t.true(cache.size.heldBytes <= maxBytes);
  t.deepEqual([...reference.keys()].filter((i) => cache.peek(keyOf(i))?.scores[1] !== -i), []);
});

/** How many answers of `width` scores a fresh cache of `maxBytes` holds: those stored before the first eviction (NaN if none by 10,000). */
async function capacityAlone(maxBytes: number, width: number): Promise<number> {
  const cache = new PredictionCache(maxBytes);
  let stored = 0;
  while (cache.evictions === 0 && stored <= 10_000) await cache.getOrEvaluate(predictionKey('m', '1', new Float32Array([stored++])), async () => prediction('m', '1', new Float32Array(width)));
  return cache.evictions === 0 ? Number.NaN : stored - 1;
}

test('widths that come and go: every entry held answers its own scores, and the widest gets all the bytes back', async (t) => {
  const maxBytes = 16 * 1024;
  const widths = [1, 10, 100];
  const stored: { key: string; width: number; value: number }[] = [];
  const cache = new PredictionCache(maxBytes);
  const put = async (width: number, value: number) => {
    const key = predictionKey(`w${width}`, '1', new Float32Array([value]));
    await cache.getOrEvaluate(key, async () => prediction(`w${width}`, '1', new Float32Array(width).fill(value)));
    stored.push({ key, width, value });
  };
  /** The entries found, checked against what was stored under their keys; their count and bytes are the cache's. */
  const check = (when: string) => {
    const held = stored.filter(({ key }) => cache.peek(key) !== undefined);
    const wrong = held.filter(({ key, width, value }) => {
      const scores = cache.peek(key)?.scores;
      return scores?.length !== width || scores.some((s) => s !== value);
    });
    t.deepEqual(wrong, [], when);
    t.deepEqual(cache.size, { entries: held.length, bytes: held.reduce((sum, e) => sum + recordBytes(e.width), 0), heldBytes: cache.size.heldBytes }, when);
    t.true(cache.size.heldBytes <= maxBytes, when);
    return held;
  };
  let value = 0;
  for (let i = 0; i < 600; i++) await put(widths[i % 3] as number, value++);
  check('mixed');
  for (let i = 0; i < 300; i++) await put(100, value++);
  const widest = check('widest only');
  t.true(widest.every((e) => e.width === 100));
  t.is(widest.length, await capacityAlone(maxBytes, 100), 'as many as in a cache that only ever held the widest');
  for (let i = 0; i < 600; i++) await put(widths[(i * 7) % 3] as number, value++);
  check('mixed again');
  for (let i = 0; i < 1500; i++) await put(1, value++);
  const narrowest = check('narrowest only');
  t.true(narrowest.every((e) => e.width === 1));
  t.is(narrowest.length, await capacityAlone(maxBytes, 1), 'as many as in a cache that only ever held the narrowest');
});

test('a large answer after many small ones evicts the oldest until it fits, even past the index they grew', async (t) => {
  // 1,000 bytes hold 26 empty answers in 13 chunks of two and an index of 64 slots (256 bytes). An answer of
  // 200 scores (828 bytes) fits alone with an index of 2 slots, but not beside an index of 64: the index must
  // shrink with the chunks given back (it once did not, and the large answer evicted all 26 and was not cached).
  const maxBytes = 1000;
  const cache = new PredictionCache(maxBytes);
  const small = prediction('m', '1', new Float32Array(0));
  const keys = Array.from({ length: 26 }, (_, i) => predictionKey('m', '1', new Float32Array([i])));
  for (const key of keys) await cache.getOrEvaluate(key, async () => small);
  t.deepEqual(cache.size, { entries: 26, bytes: 26 * recordBytes(0), heldBytes: 13 * 2 * recordBytes(0) + 64 * 4 });
  const big = prediction('m', '1', new Float32Array(200));
  t.true(recordBytes(200) + 2 * 4 <= maxBytes && recordBytes(200) + 64 * 4 > maxBytes);
  const key = predictionKey('m', '1', new Float32Array([-1]));
  t.is((await cache.getOrEvaluate(key, async () => big)).prediction, big);
  t.deepEqual(cache.peek(key), big, 'cached');
  const kept = keys.filter((k) => cache.peek(k) !== undefined);
  t.true(kept.length > 0, 'not everything was evicted');
  t.deepEqual(kept, keys.slice(keys.length - kept.length), 'the most recent small answers stay');
  t.is(cache.evictions, keys.length - kept.length);
  t.deepEqual(cache.size, { entries: kept.length + 1, bytes: kept.length * recordBytes(0) + recordBytes(200), heldBytes: cache.size.heldBytes });
  t.true(cache.size.heldBytes <= maxBytes);
});
