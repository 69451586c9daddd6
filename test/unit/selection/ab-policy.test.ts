import test from 'ava';
import { AbSplitPolicy, type AbSplitOptions } from '../../../src/selection/ab-policy.js';
import { InternalError, InvalidOptionError } from '../../../src/errors.js';
import type { PolicySnapshot } from '../../../src/selection/selection-policy.js';

function frequencies(policy: AbSplitPolicy, linked: string[], draws: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < draws; i++) {
    const chosen = policy.select(linked);
    const key = chosen.length === 0 ? '(none)' : chosen.join(',');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return new Map([...counts].map(([k, n]) => [k, n / draws]));
}

test('select draws by weight among the linked models in the split: 20,000 seeded draws within 0.015', (t) => {
  const cases: { weights: Record<string, number>; linked: string[]; expected: Record<string, number>; seed: number }[] = [
    { weights: { 'model-a': 0.9, 'model-b': 0.1 }, linked: ['model-a', 'model-b'], expected: { 'model-a': 0.9, 'model-b': 0.1 }, seed: 1 },
    { weights: { a: 1, b: 1, c: 2 }, linked: ['a', 'b', 'c'], expected: { a: 0.25, b: 0.25, c: 0.5 }, seed: 2 },
    // c is in the split but not linked: a and b share its absence in proportion.
    { weights: { a: 1, b: 3, c: 4 }, linked: ['a', 'b'], expected: { a: 0.25, b: 0.75 }, seed: 3 },
    // x is linked but not in the split, z has weight 0: neither is ever chosen.
    { weights: { a: 0.5, b: 0.5, z: 0 }, linked: ['x', 'a', 'z', 'b'], expected: { a: 0.5, b: 0.5 }, seed: 4 },
    { weights: { a: 0.5, b: 0.5 }, linked: ['b'], expected: { b: 1 }, seed: 5 },
    { weights: { a: 0.5, b: 0.5 }, linked: ['x', 'y'], expected: { '(none)': 1 }, seed: 6 },
    { weights: { a: 1, z: 0 }, linked: ['z'], expected: { '(none)': 1 }, seed: 7 },
    { weights: { a: 1 }, linked: [], expected: { '(none)': 1 }, seed: 8 },
  ];
  for (const { weights, linked, expected, seed } of cases) {
    const label = `${JSON.stringify(weights)} over ${JSON.stringify(linked)}`;
    const got = frequencies(new AbSplitPolicy(weights, { seed }), linked, 20_000);
    t.deepEqual([...got.keys()].sort(), Object.keys(expected).sort(), label);
    for (const [m, p] of Object.entries(expected)) t.true(Math.abs((got.get(m) ?? 0) - p) <= 0.015, `${label}: ${m} at ${got.get(m)}, expected ${p}`);
  }
});

test('probabilities shows the split over the linked models', (t) => {
  const p = new AbSplitPolicy({ a: 1, b: 3, c: 4 });
  t.deepEqual(p.probabilities(['a', 'b']), new Map([['a', 0.25], ['b', 0.75]]));
  t.deepEqual(p.probabilities(), new Map([['a', 0.125], ['b', 0.375], ['c', 0.5]]));
  t.deepEqual(p.probabilities(['x']), new Map([['x', 0]]));
});

test('the injected random source decides the draw', (t) => {
  const cases: [u: number, expected: string][] = [
    [0, 'a'],
    [0.899, 'a'],
    [0.9, 'b'],
    [0.999, 'b'],
  ];
  for (const [u, expected] of cases) t.deepEqual(new AbSplitPolicy({ a: 9, b: 1 }, { random: () => u }).select(['a', 'b']), [expected], `u = ${u}`);
  t.throws(() => new AbSplitPolicy({ a: 1, b: 1 }, { random: () => 2 }).select(['a', 'b']), { instanceOf: InvalidOptionError, message: /^ab\.random must return/ });
});

test('combine passes the chosen model\'s answer through; feedback learns nothing', (t) => {
  const p = new AbSplitPolicy({ a: 0.9, b: 0.1 });
  const scores = Float32Array.of(0.3, 0.7);
  t.deepEqual(p.combine([{ model: 'b', version: '2', scores }]), { scores, model: 'b', version: '2', confidence: 1, contributors: ['b'] });
  const before = p.snapshot();
  p.feedback();
  (p as { feedback(l: Map<string, number>): void }).feedback(new Map([['a', 1]]));
  t.deepEqual(p.snapshot(), before);
  t.deepEqual(before, { kind: 'ab', name: 'ab', weights: { a: 0.9, b: 0.1 } });
  t.throws(() => p.combine([]), { instanceOf: InternalError, message: 'ab.combine needs at least one output; got none' });
});

test('bad weights and options are refused with a message naming them', (t) => {
  const cases: [weights: unknown, options: unknown, message: string | RegExp][] = [
    [{ a: -0.1, b: 1 }, undefined, 'ab.weights["a"] must be a finite number >= 0; got -0.1'],
    [{ a: Number.NaN }, undefined, 'ab.weights["a"] must be a finite number >= 0; got NaN'],
    [{ a: '0.5' }, undefined, 'ab.weights["a"] must be a finite number >= 0; got "0.5"'],
    [{ a: 0, b: 0 }, undefined, /^ab\.weights must be an object with at least one weight > 0/],
    [{}, undefined, /^ab\.weights must be an object with at least one weight > 0/],
    [null, undefined, 'ab.weights must be an object; got null'],
    [['a', 'b'], undefined, 'ab.weights must be an object; got ["a","b"]'],
    [{ 'bad name': 1 }, undefined, /^ab\.weights model name must be a name/],
    [{ a: 1 }, { seed: -1 }, 'ab.seed must be an integer in [0, 2^32); got -1'],
    [{ a: 1 }, { random: 'dice' }, 'ab.random must be a function returning numbers in [0, 1); got "dice"'],
    [{ a: 1 }, { name: '-x' }, /^ab\.name must be a name/],
    [{ a: 1 }, { weights: { a: 1 } }, 'ab.weights is not an option; known options: name, seed, random'],
  ];
  for (const [weights, options, message] of cases) {
    const error = t.throws(() => new AbSplitPolicy(weights as Record<string, number>, options as AbSplitOptions), { instanceOf: InvalidOptionError }, JSON.stringify(weights));
    if (typeof message === 'string') t.is(error.message, message);
    else t.regex(error.message, message);
  }
});

test('options are frozen and the snapshot shows the weights', (t) => {
  const p = new AbSplitPolicy({ 'model-a': 0.9, 'model-b': 0.1 }, { name: 'rollout' });
  t.true(Object.isFrozen(p.options));
  t.is(p.name, 'rollout');
  t.deepEqual(JSON.parse(JSON.stringify(p.snapshot())), { kind: 'ab', name: 'rollout', weights: { 'model-a': 0.9, 'model-b': 0.1 } });
});

test('restore checks the snapshot and keeps the configured split', (t) => {
  const p = new AbSplitPolicy({ a: 0.9, b: 0.1 });
  p.restore({ kind: 'ab', weights: { a: 0.1, b: 0.9 } });
  t.deepEqual(p.weights, { a: 0.9, b: 0.1 }, 'configuration wins over an older snapshot');
  const cases: [snapshot: unknown, message: RegExp][] = [
    [null, /^ab snapshot must be an object/],
    [{ kind: 'exp3', weights: { a: 1 } }, /^ab snapshot\.kind must be "ab"; got "exp3"/],
    [{ kind: 'ab' }, /^ab snapshot\.weights must be an object; got undefined/],
    [{ kind: 'ab', weights: { a: -1 } }, /^ab snapshot\.weights\["a"\] must be a finite number >= 0/],
  ];
  for (const [snapshot, message] of cases) t.throws(() => p.restore(snapshot as PolicySnapshot), { instanceOf: InvalidOptionError, message }, JSON.stringify(snapshot));
});

test('seeds at both ends of [0, 2^32) are accepted; 2^32 is refused; an infinite weight is refused', (t) => {
  t.is(new AbSplitPolicy({ a: 1 }, { seed: 0 }).options.seed, 0);
  t.is(new AbSplitPolicy({ a: 1 }, { seed: 0xffffffff }).options.seed, 0xffffffff);
  t.throws(() => new AbSplitPolicy({ a: 1 }, { seed: 2 ** 32 }), { instanceOf: InvalidOptionError, message: 'ab.seed must be an integer in [0, 2^32); got 4294967296' });
  t.throws(() => new AbSplitPolicy({ a: Number.POSITIVE_INFINITY }), { instanceOf: InvalidOptionError, message: 'ab.weights["a"] must be a finite number >= 0; got Infinity' });
});
