import test from 'ava';
import { InvalidOptionError } from '../../../src/errors.js';
import { DEFAULT_SEED, drawUniform, mulberry32, sampleIndex } from '../../../src/kernel/random.js';

/**
 * The first four outputs of the reference mulberry32 in C (uint32_t arithmetic, the published algorithm), each
 * divided by 2^32. Computed outside this code base, so a slip in the JavaScript port shows here.
 */
const REFERENCE: [seed: number, outputs: number[]][] = [
  [0, [1144304738, 1416247, 958946056, 627933444]],
  [1, [2693262067, 11749833, 2265367787, 4213581821]],
  [42, [2581720956, 1925393290, 3661312704, 2876485805]],
  [0x2017, [2749451925, 1022605723, 191947202, 2348968745]],
  [4294967295, [3850105811, 813802916, 3073704848, 4054706436]],
];

test('mulberry32 gives the reference sequence for each seed, as floats = uint32 / 2^32', (t) => {
  for (const [seed, outputs] of REFERENCE) {
    const random = mulberry32(seed);
    t.deepEqual(Array.from({ length: 4 }, () => random()), outputs.map((x) => x / 2 ** 32), `seed ${seed}`);
  }
  t.is(mulberry32(42)(), 0.6011037519201636, 'the value in the doc comment');
  t.is(DEFAULT_SEED, 0x2017);
});

test('mulberry32 repeats per seed, differs across seeds, and takes the seed modulo 2^32', (t) => {
  const take = (random: () => number, n: number) => Array.from({ length: n }, () => random());
  const xs = take(mulberry32(42), 1000);
  t.deepEqual(take(mulberry32(42), 1000), xs);
  t.notDeepEqual(take(mulberry32(43), 1000), xs);
  t.deepEqual(take(mulberry32(-1), 10), take(mulberry32(4294967295), 10));
  t.deepEqual(take(mulberry32(2 ** 32 + 42), 10), take(mulberry32(42), 10));
});

test('mulberry32 stays in [0, 1) and fills 20 equal buckets evenly (100,000 draws)', (t) => {
  for (const seed of [1, DEFAULT_SEED]) {
    const random = mulberry32(seed);
    const n = 100_000;
    const buckets = new Array<number>(20).fill(0);
    let sum = 0;
    const outside: number[] = [];
    for (let i = 0; i < n; i++) {
      const u = random();
      if (!(u >= 0 && u < 1)) outside.push(u);
      else buckets[Math.floor(u * 20)]++;
      sum += u;
    }
    t.deepEqual(outside, [], `seed ${seed}: draws outside [0, 1)`);
    // 5,000 expected per bucket, standard deviation ~69: 350 is five of them.
    for (const [i, count] of buckets.entries()) t.true(Math.abs(count - n / 20) < 350, `seed ${seed}, bucket ${i}: ${count}`);
    t.true(Math.abs(sum / n - 0.5) < 0.005, `seed ${seed}: mean ${sum / n}`);
  }
});

test('drawUniform passes a draw in [0, 1) through, including 0 and the largest double below 1', (t) => {
  for (const u of [0, 0.25, 0.5, 1 - 2 ** -53]) t.is(drawUniform(() => u, 'x.random'), u);
  const random = mulberry32(7);
  const expected = mulberry32(7);
  for (let i = 0; i < 5; i++) t.is(drawUniform(random, 'x.random'), expected(), 'draws from the source it is given');
});

test('drawUniform refuses anything outside [0, 1) with InvalidOptionError naming the option and the value', (t) => {
  const bad: unknown[] = [1, 1.5, -0.1, -Number.MIN_VALUE, Number.NaN, Number.POSITIVE_INFINITY, '0.5', undefined, null];
  for (const value of bad) {
    const error = t.throws(() => drawUniform(() => value as number, 'exp3.random'), { instanceOf: InvalidOptionError }, String(value));
    t.is(error?.message, `exp3.random must return a number in [0, 1); got ${String(value)}`);
    t.is(error?.code, 'INVALID_OPTION');
  }
});

test('sampleIndex walks the cumulative weights: [lo, hi) per index, zero weights never chosen, -1 when none is positive', (t) => {
  const cases: [weights: number[], u: number, expected: number][] = [
    [[1], 0, 0],
    [[1], 0.999999, 0],
    [[5], 0.5, 0],
    [[0.9, 0.1], 0, 0],
    [[0.9, 0.1], 0.899, 0],
    [[0.9, 0.1], 0.9, 1],
    [[0.9, 0.1], 0.999999, 1],
    // Boundaries: u * total equal to a cumulative sum belongs to the next index.
    [[1, 1, 2], 0, 0],
    [[1, 1, 2], 0.2499, 0],
    [[1, 1, 2], 0.25, 1],
    [[1, 1, 2], 0.4999, 1],
    [[1, 1, 2], 0.5, 2],
    [[1, 1, 2], 0.9999, 2],
    // Weights need not sum to 1.
    [[2, 6], 0.2499, 0],
    [[2, 6], 0.25, 1],
    [[30, 10, 60], 0.35, 1],
    [[30, 10, 60], 0.4, 2],
    // Zero weights are skipped wherever they are.
    [[0, 3, 0], 0, 1],
    [[0, 3, 0], 0.99999, 1],
    [[0, 1, 0, 1], 0.4999, 1],
    [[0, 1, 0, 1], 0.5, 3],
    [[2, 0], 0.99999999, 0],
    [[2, 0, 0], 1 - 2 ** -53, 0],
    // Negative and NaN weights count as zero and do not shift the others.
    [[1, -5, 1, 1], 0.5, 2],
    [[1, Number.NaN, 1, 1], 0.5, 2],
    [[-1, 1], 0, 1],
    [[Number.NaN, 2], 0.75, 1],
    [[0, 0], 0.5, -1],
    [[-1, Number.NaN, 0], 0.5, -1],
    [[], 0.5, -1],
  ];
  for (const [weights, u, expected] of cases) t.is(sampleIndex(weights, u), expected, `${JSON.stringify(weights)} at ${u}`);
  t.is(sampleIndex(new Float64Array([0, 0.5, 0.5]), 0.6), 2, 'any ArrayLike, e.g. a Float64Array');
});

test('sampleIndex over uniform draws picks each index in proportion to its weight', (t) => {
  const weights = [1, 0, 3, 6, 0];
  const random = mulberry32(11);
  const n = 100_000;
  const counts = new Array<number>(weights.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleIndex(weights, random())]++;
  t.is(counts[1], 0);
  t.is(counts[4], 0);
  for (const [i, p] of [[0, 0.1], [2, 0.3], [3, 0.6]] as const) {
    t.true(Math.abs(counts[i] / n - p) < 0.01, `index ${i}: ${counts[i] / n}, expected ${p}`);
  }
});
