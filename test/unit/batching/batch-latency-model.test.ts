import test from 'ava';
import { BatchLatencyModel } from '../../../src/batching/batch-latency-model.js';
import { mulberry32 } from '../../../src/kernel/random.js';

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

test('batches of different sizes fit a line: fixed cost plus cost per row, weighted by recency (alpha 0.2)', (t) => {
  const m = new BatchLatencyModel();
  m.observe(10, 5);
  m.observe(20, 10);
  // Weighted means: rows 12, ms 6, rows^2 160, rows*ms 80 -> slope 8 / 16 = 0.5 ms a row, fixed 6 - 0.5 * 12 = 0.
  t.is(m.samples, 2);
  t.deepEqual(m.line, { fixedMs: 0, perRowMs: 0.5 });
  t.is(m.estimate(6), 3);
  t.is(m.estimate(24), 12);
  t.is(m.rowsWithin(9), 18);
});

test('a large fixed cost is not scaled up with the rows (the thread hop costs the same for 1 row or 128)', (t) => {
  const m = new BatchLatencyModel();
  for (let i = 0; i < 20; i++) {
    m.observe(1, 1);
    m.observe(65, 1.64);
  }
  const line = m.line;
  t.truthy(line);
  t.true(Math.abs((line?.fixedMs ?? 0) - 0.99) < 0.01, `fixed ${line?.fixedMs}`);
  t.true(Math.abs((line?.perRowMs ?? 0) - 0.01) < 0.001, `per row ${line?.perRowMs}`);
  t.true(m.estimate(129) < 2.4, `a 129-row batch: ${m.estimate(129)} ms, not the ~${(1.32 * 129) / 33} ms a proportional guess would say`);
  t.true(m.rowsWithin(10) > 800);
});

test('a fit with a negative fixed cost falls back to a line through the origin', (t) => {
  const m = new BatchLatencyModel(0.5);
  m.observe(10, 1);
  m.observe(20, 10);
  const line = m.line;
  t.is(line?.fixedMs, 0);
  t.true((line?.perRowMs ?? 0) > 0);
  t.true(m.estimate(30) > m.estimate(15));
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

test('one stalled batch moves the estimate only so far; a lasting slowdown still shows quickly', (t) => {
  const m = new BatchLatencyModel();
  for (let i = 0; i < 10; i++) m.observe(10, 1);
  m.observe(10, 200); // the machine paused the worker for 200 ms
  t.true(m.estimate(10) < 2, `after one stall: ${m.estimate(10)} ms`);
  // The stall's residual is in the top tenth of this short history, so the next slow batch counts whole: a
  // lasting slowdown raises the estimate from its second batch on.
  let previous = m.estimate(10);
  for (let i = 0; i < 11; i++) {
    m.observe(10, 200);
    t.true(m.estimate(10) > previous);
    previous = m.estimate(10);
  }
  t.true(m.estimate(10) > 100, `after a lasting slowdown: ${m.estimate(10)} ms`);
});

test('a slope once fitted is kept while the sizes stop varying; the level follows the recent batches', (t) => {
  const m = new BatchLatencyModel();
  // Warm-up-like history: 4 ms + 0.5 ms a row.
  for (const rows of [1, 9, 1, 9, 1, 9]) m.observe(rows, 4 + 0.5 * rows);
  // Then a light-load spell: batches of 2 rows only, taking 5.5 ms (the level moved up by 0.5 ms).
  for (let i = 0; i < 40; i++) m.observe(2, 5.5);
  const line = m.line;
  t.truthy(line);
  // The slope last fitted while the sizes still varied enough (the level was already moving: a little under 0.5).
  const slope = line?.perRowMs ?? 0;
  t.true(slope > 0.4 && slope <= 0.5, `slope ${slope}`);
  t.is(Math.round(m.estimate(2) * 100) / 100, 5.5, 'the level of the recent batches');
  const eight = m.estimate(8);
  t.true(eight > 7.9 && eight <= 8.5, `6 rows more cost about 3 ms (${eight}), not 4x the time of 2 rows (22 ms)`);
});

test('warm-up seeding drops the first run of each size and runs that measured nothing', (t) => {
  const m = new BatchLatencyModel();
  m.seed([
    [8, 50],
    [1, 30],
    [8, 8],
    [1, 4.5],
    [4, 0],
    [4, 0],
  ]);
  t.is(m.samples, 2, 'the second runs of sizes 8 and 1');
  t.deepEqual(m.line, { fixedMs: 4, perRowMs: 0.5 });
});

test('the first real batch after warm-ups sets the level (warm-ups ran zeros); their slope stays', (t) => {
  const m = new BatchLatencyModel();
  m.seed([
    [8, 50],
    [1, 30],
    [8, 8],
    [1, 4.5],
  ]);
  t.is(m.estimate(1), 4.5);
  // A model whose time depends on its input: real queries take 25 ms where zeros took 4.5.
  m.observe(1, 25);
  t.is(m.estimate(1), 25);
  t.is(m.estimate(9), 29, 'the slope of the warm-ups, 0.5 ms a row');
  m.observe(1, 25);
  t.is(m.estimate(1), 25, 'later batches average in as usual');
});

/** The uncertainty the model promises, computed the slow way: the 95th percentile (rank ceil(0.95 n)) of the last 64 residuals, at least 0. */
function referenceSlack(residuals: readonly number[]): number {
  const window = residuals.slice(-64).sort((a, b) => a - b);
  if (window.length === 0) return 0;
  return Math.max(0, window[Math.min(window.length - 1, Math.ceil(0.95 * window.length) - 1)] as number);
}

test('slackMs: the 95th percentile of the last 64 residuals (observed minus predicted just before), from the third batch on', (t) => {
  const m = new BatchLatencyModel();
  t.is(m.slackMs, 0, 'nothing measured');
  t.is(m.estimateHigh(4), 0, 'no estimate before any batch');
  // A deterministic mix of sizes and times, long enough for the window to wrap twice; residuals are distinct,
  // so a percentile taken at the wrong rank, or over a window one sample too long, gives another value.
  const residuals: number[] = [];
  const random = mulberry32(11);
  for (let i = 0; i < 200; i++) {
    const rows = 1 + ((i * 7) % 13);
    // The first residual is an outlier (a stall): it must leave the window after 64 more.
    const ms = 4 + 0.5 * rows + 8 * random() - 2 + (i === 2 ? 50 : 0);
    const predicted = m.estimate(rows);
    if (i >= 2) residuals.push(ms - predicted);
    m.observe(rows, ms);
    if (m.slackMs !== referenceSlack(residuals)) return t.fail(`batch ${i}: slack ${m.slackMs}, expected ${referenceSlack(residuals)}`);
  }
  t.true(m.slackMs > 0);
  t.pass();
});

test('the first two batches leave no residual; a faster-than-predicted spell gives no negative slack', (t) => {
  const m = new BatchLatencyModel();
  m.observe(10, 10);
  m.observe(10, 30);
  t.is(m.slackMs, 0, 'two batches: nothing was predicted from a history yet');
  // The third batch is predicted at the mean of the two (alpha 0.2: 14 ms) and takes 20: a residual of 6.
  t.is(m.estimate(10), 14);
  m.observe(10, 20);
  t.is(m.slackMs, 6);
  // Batches faster than predicted: their residuals are negative, and once they fill the window the slack is 0, not below.
  for (let i = 0; i < 64; i++) m.observe(10, 1);
  t.is(m.slackMs, 0);
});

test('estimateHigh and rowsWithinHigh add the slack to the fitted line', (t) => {
  const m = new BatchLatencyModel();
  m.observe(10, 10);
  m.observe(10, 10);
  m.observe(10, 14); // predicted 10: a residual of 4; the mean moves to 10.8
  t.is(m.slackMs, 4);
  t.is(m.estimate(10), 10.8);
  t.is(m.estimateHigh(10), 14.8);
  t.is(m.estimateHigh(20), 25.6, 'the proportional guess beyond the mean size, plus the slack');
  // 10.8 ms a batch of up to 10 rows: 21.6 ms hold 20 rows by the fit, 4 ms fewer hold 16.
  t.is(m.rowsWithin(21.6), 20);
  t.is(m.rowsWithinHigh(21.6), 16);
  t.is(m.rowsWithinHigh(14.7), 0, 'not even one row within its high estimate');
  t.is(m.rowsWithinHigh(14.8), 10);
});

test('clipping starts after five batches: the sixth counts for at most the estimate + max(1 ms, 2x the p90 residual), the fifth in full', (t) => {
  const after = (history: number) => {
    const m = new BatchLatencyModel();
    for (let i = 0; i < history; i++) m.observe(10, 1);
    m.observe(10, 200);
    return m.estimate(10);
  };
  t.is(after(4), 1 + 0.2 * 199, 'four batches seen: the fifth counts as measured');
  t.is(after(5), 1 + 0.2 * 1, 'five seen, every residual 0: the sixth counts as 1 + 1 ms');
});

test('the stall cut follows the spread of recent residuals: noisy batches count as measured, a stall of many times that is cut', (t) => {
  // 64 batches of 10 rows alternating 4 and 6 ms: the estimate hovers near 5, residuals about +-1 ms, the cut
  // twice the p90 residual (~2 ms).
  const noisy = () => {
    const m = new BatchLatencyModel();
    for (let i = 0; i < 64; i++) m.observe(10, i % 2 === 0 ? 4 : 6);
    return m;
  };
  const m = noisy();
  const before = m.estimate(10);
  m.observe(10, before + 1.5);
  t.is(m.estimate(10), before + 0.2 * 1.5, 'within the spread: counted whole');
  const stalled = noisy();
  stalled.observe(10, 45); // a 40 ms stall of the main thread or the worker
  t.true(stalled.estimate(10) < before + 0.2 * 3, `one stall moves the estimate by at most a fifth of the cut: ${stalled.estimate(10)} ms`);
  // A lasting slowdown (45 ms from now on) fills the top tenth of the residuals within a few batches, and is learnt.
  for (let i = 0; i < 20; i++) stalled.observe(10, 45);
  t.true(stalled.estimate(10) > 40, `after 21 slow batches: ${stalled.estimate(10)} ms`);
});

test('warm-ups do not count toward the history clipping needs, and only the first real batch resets the level', (t) => {
  const seeded = () => {
    const m = new BatchLatencyModel();
    // Two warm-ups kept, on the line 4 ms + 0.5 ms a row.
    m.seed([
      [1, 30],
      [1, 4.5],
      [9, 50],
      [9, 8.5],
    ]);
    t.deepEqual(m.line, { fixedMs: 4, perRowMs: 0.5 });
    m.observe(1, 25); // the first real batch sets the level
    return m;
  };
  const slow = seeded();
  slow.observe(1, 500);
  t.is(slow.estimate(1), 25 + 0.2 * 475, 'the second real batch counts in full: two real batches are no history');
  const later = seeded();
  later.observe(1, 35);
  t.is(later.estimate(1), 27, 'the second real batch averages in (alpha 0.2), it does not reset the level');
});

test('sizes one row apart in equal weight (variance exactly 0.25) already fit a line', (t) => {
  const m = new BatchLatencyModel(0.5);
  m.observe(1, 4);
  m.observe(2, 5);
  t.deepEqual(m.line, { fixedMs: 3, perRowMs: 1 });
  t.is(m.estimate(4), 7);
});

test('the line through the origin has the mean time per mean row as its slope', (t) => {
  const m = new BatchLatencyModel(0.5);
  m.observe(10, 1);
  m.observe(20, 10);
  // Means: 15 rows, 5.5 ms; the fitted fixed cost is negative (-8), so 5.5 / 15 ms a row.
  t.deepEqual(m.line, { fixedMs: 0, perRowMs: 5.5 / 15 });
  t.is(Math.round(m.estimate(30) * 1e9) / 1e9, 11);
});

test('rowsWithin on a fitted line with a fixed cost: 0 below one row, then whole rows; unbounded when rows cost nothing', (t) => {
  const m = new BatchLatencyModel();
  m.seed([
    [1, 30],
    [1, 4.5],
    [9, 50],
    [9, 8.5],
  ]);
  // 4 ms + 0.5 ms a row.
  const cases: [ms: number, rows: number][] = [
    [4, 0],
    [4.49, 0],
    [4.5, 1],
    [9, 10],
    [9.2, 10],
  ];
  for (const [ms, rows] of cases) t.is(m.rowsWithin(ms), rows, `${ms} ms`);
  // Batches of 1 and 9 rows both taking 5 ms: no cost per row.
  const flat = new BatchLatencyModel();
  flat.observe(1, 5);
  flat.observe(9, 5);
  t.deepEqual(flat.line, { fixedMs: 5, perRowMs: 0 });
  t.is(flat.rowsWithin(4.9), 0);
  t.is(flat.rowsWithin(5), Number.POSITIVE_INFINITY, 'exactly the fixed cost: any number of rows');
  t.is(flat.rowsWithin(50), Number.POSITIVE_INFINITY);
});
