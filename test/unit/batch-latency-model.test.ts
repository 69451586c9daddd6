import test from 'ava';
import { BatchLatencyModel } from '../../src/batch-latency-model.js';

test('before any batch it predicts 0 ms and lets any number of rows through', (t) => {
  const m = new BatchLatencyModel();
  t.is(m.samples, 0);
  for (const rows of [1, 10, 1_000]) t.is(m.estimate(rows), 0);
  for (const ms of [0, 1, 100]) t.is(m.rowsWithin(ms), Number.POSITIVE_INFINITY);
});

test('after one batch: its time for batches up to its size, proportionally more beyond', (t) => {
  const m = new BatchLatencyModel();
  m.observe(10, 5);
  t.is(m.samples, 1);
  const cases: [rows: number, ms: number][] = [
    [1, 5],
    [5, 5],
    [10, 5],
    [20, 10],
    [35, 17.5],
  ];
  for (const [rows, ms] of cases) t.is(m.estimate(rows), ms, `${rows} rows`);
});

test('rowsWithin: 0 below one batch time, else the most rows whose estimate fits', (t) => {
  const m = new BatchLatencyModel();
  m.observe(10, 5);
  const cases: [ms: number, rows: number][] = [
    [0, 0],
    [4.99, 0],
    [5, 10],
    [7.4, 14],
    [12, 24],
    [50, 100],
  ];
  for (const [ms, rows] of cases) t.is(m.rowsWithin(ms), rows, `${ms} ms`);
});

test('a single-row history still yields at least one row when a batch fits', (t) => {
  const m = new BatchLatencyModel();
  m.observe(1, 4);
  t.is(m.rowsWithin(4), 1);
  t.is(m.rowsWithin(9), 2);
  t.is(m.estimate(3), 12);
});

test('later batches move exponentially weighted means (alpha 0.2 by default)', (t) => {
  const m = new BatchLatencyModel();
  m.observe(10, 5);
  m.observe(20, 10);
  // meanMs = 5 + 0.2 * (10 - 5) = 6; meanRows = 10 + 0.2 * (20 - 10) = 12.
  t.is(m.samples, 2);
  t.is(m.estimate(6), 6);
  t.is(m.estimate(12), 6);
  t.is(m.estimate(24), 12);
  t.is(m.rowsWithin(9), 18);
});

test('a custom alpha weighs new batches accordingly', (t) => {
  const m = new BatchLatencyModel(0.5);
  m.observe(10, 10);
  m.observe(10, 20);
  t.is(m.estimate(1), 15);
  const slow = new BatchLatencyModel(1);
  slow.observe(10, 10);
  slow.observe(10, 40);
  t.is(slow.estimate(1), 40, 'alpha 1 keeps only the latest batch');
});

test('rowsWithin and estimate agree: the rows returned fit, one more would not', (t) => {
  const m = new BatchLatencyModel();
  m.observe(10, 5);
  m.observe(20, 10);
  for (const ms of [6, 7, 9, 13.5, 100]) {
    const rows = m.rowsWithin(ms);
    t.true(m.estimate(rows) <= ms, `${rows} rows fit in ${ms} ms`);
    t.true(m.estimate(rows + 1) > ms, `${rows + 1} rows do not fit in ${ms} ms`);
  }
});
