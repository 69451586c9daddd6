import test, { type ExecutionContext } from 'ava';
import { InvalidOptionError } from '../../../src/errors.js';
import { LogWeights, parseWeightSnapshot } from '../../../src/selection/log-weights.js';

function close(t: ExecutionContext, actual: ArrayLike<number>, expected: number[], label: string): void {
  t.is(actual.length, expected.length, label);
  for (let i = 0; i < expected.length; i++) {
    t.true(Math.abs(actual[i] - expected[i]) <= 1e-12, `${label} [${i}]: ${actual[i]} is not ${expected[i]}`);
  }
}

const table = (entries: Record<string, number>, gap = 700): LogWeights => {
  const w = new LogWeights(gap);
  w.replace(Object.entries(entries));
  return w;
};

test('the table reports its models, their stored log weights, and its size', (t) => {
  const w = table({ a: 0, b: -1 });
  t.is(w.size, 2);
  t.true(w.has('a'));
  t.false(w.has('c'));
  t.is(w.logWeight('a'), 0);
  t.is(w.logWeight('b'), -1);
  t.is(w.logWeight('c'), undefined);
  t.deepEqual(w.models(), ['a', 'b']);
  t.deepEqual(w.toJSON(), { a: 0, b: -1 });
  t.is(new LogWeights(700).size, 0);
});

test('replace shifts so the largest log weight is 0, and a later entry for the same model wins', (t) => {
  const w = new LogWeights(700);
  w.replace([['a', 5], ['b', 3], ['a', 2]]);
  t.is(w.size, 2);
  t.deepEqual(w.toJSON(), { a: -1, b: 0 });
});

test('a new model starts at the mean weight of its known peers, else of the whole table, else at weight 1', (t) => {
  const w = table({ a: 0, b: -1, c: -3 });
  // Peers b and c only (their largest is -1, not 0): log((e^-1 + e^-3) / 2).
  t.true(Math.abs(w.initialLogWeight(['b', 'c', 'new']) - Math.log((Math.exp(-1) + Math.exp(-3)) / 2)) < 1e-12);
  t.true(Math.abs(w.initialLogWeight(['new']) - Math.log((1 + Math.exp(-1) + Math.exp(-3)) / 3)) < 1e-12);
  t.is(new LogWeights(700).initialLogWeight(['x']), 0);
});

test('a wide gap (maxLogWeightGap 1e6) still gives finite weights, means and probabilities', (t) => {
  const w = table({ a: 0, b: -1000 }, 1e6);
  t.deepEqual(w.toJSON(), { a: 0, b: -1000 });
  t.true(Math.abs(w.initialLogWeight([]) - Math.log((1 + Math.exp(-1000)) / 2)) < 1e-12);
  // The top model first and last: e^1000 would overflow if either were taken as the shift.
  close(t, w.distribution(['a', 'b']), [1, 0], 'a first');
  close(t, w.distribution(['b', 'a']), [0, 1], 'a last');
});

test('models far below the top keep their relative probabilities (the softmax shifts by the largest of those asked for)', (t) => {
  const w = table({ a: 0, b: -600, c: -601 });
  const e = Math.E;
  close(t, w.distribution(['b', 'c']), [e / (1 + e), 1 / (1 + e)], 'b, c');
  close(t, w.distribution(['c', 'b']), [1 / (1 + e), e / (1 + e)], 'c, b');
});

test('distribution mixes in gamma / K and water-fills a floor that pushes a second model under it', (t) => {
  const w = table({ a: Math.log(0.7), b: Math.log(0.21), c: Math.log(0.09) });
  close(t, w.distribution(['a', 'b', 'c']), [0.7, 0.21, 0.09], 'no floor');
  close(t, w.distribution(['a', 'b', 'c'], 0.3), [0.7 * 0.7 + 0.1, 0.7 * 0.21 + 0.1, 0.7 * 0.09 + 0.1], 'gamma 0.3');
  // Floor 0.2: c is raised to 0.2, which scales b (0.21 * 0.8 / 0.91 = 0.185) under 0.2 too; a keeps the rest.
  close(t, w.distribution(['a', 'b', 'c'], 0, 0.2), [0.6, 0.2, 0.2], 'floor 0.2');
  close(t, w.distribution(['a', 'b', 'c'], 0, 0.1), [0.7 * 0.9 / 0.91, 0.21 * 0.9 / 0.91, 0.1], 'floor 0.1: only c');
  close(t, w.distribution(['a', 'b', 'c'], 0, 0.5), [1 / 3, 1 / 3, 1 / 3], 'a floor above 1/K is uniform');
  t.deepEqual([...w.distribution([])], []);
});

test('decrease lowers each named weight by factor * loss, adds unseen models first, and leaves zero losses alone', (t) => {
  const w = table({ a: 0, b: 0 });
  w.decrease(new Map([['a', 0.5], ['c', 0]]), 2);
  // c joins at the mean (weight 1), then a drops by 1; the top (b, c) stays at 0.
  t.deepEqual(w.toJSON(), { a: -1, b: 0, c: 0 });
  w.decrease(new Map([['b', 0]]), Number.POSITIVE_INFINITY);
  t.deepEqual(w.toJSON(), { a: -1, b: 0, c: 0 }, 'a zero loss with an infinite factor changes nothing');
  w.decrease(new Map([['b', 1]]), Number.POSITIVE_INFINITY);
  t.deepEqual(w.toJSON(), { a: -1, b: -700, c: 0 }, 'an infinite drop lands on the gap bound');
});

test('parse takes an object of finite numbers and names the field and the value it refuses', (t) => {
  t.deepEqual(LogWeights.parse('w', { a: 0, b: -2.5 }), [['a', 0], ['b', -2.5]]);
  const refused: [unknown, RegExp][] = [
    [{ a: 'x' }, /^w\["a"\] must be a finite number; got/],
    [{ a: Number.NaN }, /^w\["a"\] must be a finite number; got/],
    [{ a: Number.NEGATIVE_INFINITY }, /^w\["a"\] must be a finite number; got/],
    [{ a: null }, /^w\["a"\] must be a finite number; got/],
    [{ '': 0 }, /^w keys must be non-empty model names/],
    [[1, 2], /^w must be an object/],
  ];
  for (const [value, message] of refused) t.throws(() => LogWeights.parse('w', value), { instanceOf: InvalidOptionError, message }, JSON.stringify(value));
});

test('parseWeightSnapshot checks kind and updates (an integer >= 0, default 0)', (t) => {
  t.deepEqual(parseWeightSnapshot('exp3', { kind: 'exp3', logWeights: { a: 0 }, updates: 7 }), { logWeights: [['a', 0]], updates: 7 });
  t.deepEqual(parseWeightSnapshot('exp4', { kind: 'exp4', logWeights: {} }), { logWeights: [], updates: 0 });
  t.throws(() => parseWeightSnapshot('exp3', { kind: 'exp4', logWeights: {} }), { instanceOf: InvalidOptionError, message: /^exp3 snapshot\.kind must be "exp3"/ });
  for (const updates of [-1, 1.5, '3', Number.NaN, 2 ** 53]) {
    t.throws(() => parseWeightSnapshot('exp3', { kind: 'exp3', logWeights: {}, updates }), { instanceOf: InvalidOptionError, message: /^exp3 snapshot\.updates must be an integer >= 0/ }, String(updates));
  }
});

test('add joins only the unseen models, all at the same initial weight; known ones keep theirs', (t) => {
  const w = table({ a: 0, b: -2 });
  w.add(['a', 'x', 'y', 'b']);
  t.is(w.size, 4);
  const mean = Math.log((1 + Math.exp(-2)) / 2);
  const json = w.toJSON();
  t.deepEqual(Object.keys(json), ['a', 'b', 'x', 'y']);
  t.is(json.a, 0);
  t.is(json.b, -2);
  t.true(Math.abs((json.x as number) - mean) < 1e-12 && json.x === json.y, `x ${json.x}, y ${json.y}`);
});

test('distribution counts an unseen model at its initial weight without adding it', (t) => {
  const w = table({ a: 0, b: -2 });
  // new joins at the mean of its known peers a and b: (1 + e^-2) / 2 in weight space.
  const m = (1 + Math.exp(-2)) / 2;
  close(t, w.distribution(['a', 'b', 'new']), [1 / (1 + Math.exp(-2) + m), Math.exp(-2) / (1 + Math.exp(-2) + m), m / (1 + Math.exp(-2) + m)], 'a, b, new');
  close(t, w.distribution(['new', 'other']), [0.5, 0.5], 'two unseen models: equal');
  t.is(w.size, 2);
  t.false(w.has('new'));
});

test('decrease of a model the table has not seen adds it first, then lowers it', (t) => {
  const w = table({ a: 0 });
  w.decrease(new Map([['new', 1]]), 0.5);
  t.deepEqual(w.toJSON(), { a: 0, new: -0.5 });
});

test('parseWeightSnapshot names the snapshot in what it refuses', (t) => {
  t.throws(() => parseWeightSnapshot('exp3', 5), { instanceOf: InvalidOptionError, message: 'exp3 snapshot must be an object; got 5' });
  t.throws(() => parseWeightSnapshot('exp4', { kind: 'exp4', logWeights: 5 }), { instanceOf: InvalidOptionError, message: 'exp4 snapshot.logWeights must be an object; got 5' });
});
