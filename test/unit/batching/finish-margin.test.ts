import test from 'ava';
import { FinishMargin } from '../../../src/batching/finish-margin.js';

/** 100 batches 2 ms apart whose worst errors run 0.00-0.99 ms: a margin of 0.95 ms. */
function steady(): { margin: FinishMargin; now: number } {
  const margin = new FinishMargin();
  let now = 0;
  for (let i = 0; i < 100; i++) margin.observe(((i * 37) % 100) / 100, (now += 2));
  return { margin, now };
}

test('the fallback until 5 batches are known, then the 95th percentile of the last 500 ms', (t) => {
  const margin = new FinishMargin();
  for (let i = 0; i < 4; i++) margin.observe(1 + i, i);
  t.is(margin.marginMs(4, 7), 7, 'four batches: the fallback');
  margin.observe(5, 4);
  t.is(margin.marginMs(4, 7), 5, 'five: the largest (rank floor(0.95 x 5))');
  t.is(steady().margin.marginMs(steady().now, 7), 0.95);
  t.is(margin.marginMs(600, 7), 7, 'all older than 500 ms: the fallback again');
});

test('a run of consecutive late batches (one stall and its backlog) counts once, at its worst', (t) => {
  const { margin, now } = steady();
  // Seven batches in a row 5-25 ms late: counted each, they would be the top 7 of 107, and the rank-101 error (the
  // margin) would be 6 ms.
  [5, 25, 12, 8, 6, 7, 9].forEach((ms, i) => margin.observe(ms, now + 5 * (i + 1)));
  t.is(margin.count, 101, 'one sample for the episode under way');
  t.is(margin.marginMs(now + 35, 0), 0.95, 'the rank-95 error of 101, the episode above it');
  margin.observe(0.5, now + 40);
  t.is(margin.count, 102, 'the episode closed as one sample');
  t.is(margin.marginMs(now + 40, 0), 0.95, 'counted each, the seven would have made it 6 ms');
});

test('late batches that recur move the margin: an episode ends after 100 ms, and separate ones count each', (t) => {
  const { margin, now } = steady();
  // A slowdown that lasts: every batch 10 ms late for 500 ms. Episodes of 100 ms: 5 samples of 10 ms.
  for (let i = 1; i <= 100; i++) margin.observe(10, now + 5 * i);
  t.is(margin.marginMs(now + 500, 0), 10, 'five or more 10 ms samples among the last 500 ms: the margin');
  // Late batches apart from each other (an on-time one between): each its own sample.
  const apart = steady();
  for (let i = 0; i < 6; i++) {
    apart.margin.observe(8, apart.now + 10 * i + 5);
    apart.margin.observe(0.1, apart.now + 10 * i + 10);
  }
  t.is(apart.margin.marginMs(apart.now + 60, 0), 8, 'six separate late batches in ~110: the top 5% is theirs');
});
