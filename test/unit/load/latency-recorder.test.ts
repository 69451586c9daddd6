import test from 'ava';
import { LatencyRecorder } from '../../../src/load/latency-recorder.js';

// Node's HDR histogram keeps 3 significant figures: a percentile is within 0.1% of the true value, plus
// the microsecond it records in.
const close = (actual: number, expected: number): boolean => Math.abs(actual - expected) <= expected * 0.002 + 0.002;

test('percentiles of a uniform distribution of 1..10,000 ms', (t) => {
  const r = new LatencyRecorder();
  for (let ms = 1; ms <= 10_000; ms++) r.record(ms);
  const s = r.summary();
  t.is(s.count, 10_000);
  for (const [got, expected] of [
    [s.p50, 5000],
    [s.p90, 9000],
    [s.p99, 9900],
    [s.p999, 9990],
    [s.max, 10_000],
    [s.mean, 5000.5],
  ] as const) {
    t.true(close(got, expected), `got ${got}, expected ${expected}`);
  }
});

test('percentiles of an exponential distribution match -ln(1 - q) * mean', (t) => {
  const r = new LatencyRecorder();
  const n = 100_000;
  const mean = 4;
  // Exact quantiles of Exp(1/4), laid out deterministically (inverse CDF at evenly spaced probabilities).
  for (let i = 0; i < n; i++) r.record(-Math.log(1 - (i + 0.5) / n) * mean);
  for (const q of [50, 90, 99, 99.9]) {
    const expected = -Math.log(1 - q / 100) * mean;
    const got = r.percentile(q);
    t.true(close(got, expected), `p${q}: got ${got}, expected ${expected}`);
  }
});

test('sub-millisecond latencies keep microsecond resolution', (t) => {
  const r = new LatencyRecorder();
  for (let i = 0; i < 1000; i++) r.record(0.25 + (i % 2) * 0.5);
  t.true(close(r.percentile(25), 0.25));
  t.true(close(r.percentile(75), 0.75));
});

test('misses count as slower than every answer', (t) => {
  const r = new LatencyRecorder();
  for (let i = 1; i <= 980; i++) r.record(1);
  for (let i = 0; i < 20; i++) r.recordMiss();
  t.is(r.count, 1000);
  t.is(r.misses, 20);
  t.true(close(r.percentile(50), 1));
  t.true(close(r.percentile(98), 1), 'the 980th of 1,000 is still an answer');
  t.is(r.percentile(99), Number.POSITIVE_INFINITY, 'the 990th is a miss');
  t.is(r.summary().max, Number.POSITIVE_INFINITY);
});

test('a recorder with nothing in it reports NaN', (t) => {
  const r = new LatencyRecorder();
  t.true(Number.isNaN(r.percentile(50)));
  t.true(Number.isNaN(r.summary().mean));
});
