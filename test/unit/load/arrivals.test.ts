import test from 'ava';
import { arrivalGaps, seededUniform } from '../../../src/load/arrivals.js';

function moments(gaps: number[]): { mean: number; sd: number } {
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const variance = gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / (gaps.length - 1);
  return { mean, sd: Math.sqrt(variance) };
}

test('fixed arrivals are evenly spaced at 1000 / rate ms', (t) => {
  for (const rate of [1, 250, 20_000]) {
    const gap = arrivalGaps('fixed', rate);
    t.is(gap(), 1000 / rate);
    t.is(gap(), 1000 / rate);
  }
});

test('poisson gaps are exponential: mean and standard deviation both 1000 / rate', (t) => {
  const n = 50_000;
  for (const rate of [100, 5000]) {
    const gap = arrivalGaps('poisson', rate, 42);
    const { mean, sd } = moments(Array.from({ length: n }, gap));
    const expected = 1000 / rate;
    // The sample mean's standard error is expected / sqrt(n) (0.45%); allow about 4.5 of them.
    t.true(Math.abs(mean / expected - 1) < 0.02, `rate ${rate}: mean gap ${mean}, expected ${expected}`);
    t.true(Math.abs(sd / expected - 1) < 0.03, `rate ${rate}: sd ${sd}, expected ${expected}`);
  }
});

test('poisson gaps follow the exponential distribution: P(gap > mean) = 1/e', (t) => {
  const gap = arrivalGaps('poisson', 1000, 3);
  const n = 50_000;
  let over = 0;
  for (let i = 0; i < n; i++) if (gap() > 1) over++;
  t.true(Math.abs(over / n - Math.exp(-1)) < 0.01, `share over the mean ${over / n}`);
});

test('the same seed gives the same gaps; another seed other gaps', (t) => {
  const a = arrivalGaps('poisson', 100, 9);
  const b = arrivalGaps('poisson', 100, 9);
  const c = arrivalGaps('poisson', 100, 10);
  const xs = Array.from({ length: 10 }, a);
  t.deepEqual(xs, Array.from({ length: 10 }, b));
  t.notDeepEqual(xs, Array.from({ length: 10 }, c));
  const u = seededUniform(1);
  for (let i = 0; i < 1000; i++) {
    const x = u();
    t.true(x >= 0 && x < 1);
  }
});

test('a rate that is not a positive number is refused with a message naming it', (t) => {
  for (const rate of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => arrivalGaps('fixed', rate), { instanceOf: RangeError, message: /rate must be a positive number/ });
  }
});
